"""The HTML report: self-contained, every section present, user strings escaped, readable at many runs."""

from __future__ import annotations

import re

import synthetic_runs as sr

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_results import records, report

SECTIONS = ("Runs", "Failure probability", "Outputs", "Sensitivity", "Convergence", "Failed runs", "Configuration")


def render(n: int, failures_every: int = 37) -> str:
    cfg, runs, _ = sr.ishigami_runs(n)
    cfg.dispersions[0].units = "<b>rad</b>"
    for r in runs[::failures_every]:
        r.status, r.termination_reason = pb.JOB_STATUS_FAILED, pb.TERMINATION_REASON_EARLY_TERMINATION
        r.termination_variable, r.termination_condition = "alt<script>alert(1)</script>", "< 5"
    batch = pb.Batch(
        batch_id="b-1", name="study <img src=x onerror=alert(1)>", seed=7, config=cfg, status=pb.BATCH_STATUS_COMPLETED
    )
    return report.render(batch, records.records(cfg, sr.chunks(runs)))


def test_report_has_every_section_and_escapes_user_strings():
    html = render(300)
    for section in SECTIONS:
        assert f">{section}</h2>" in html
    assert "<script" not in html and "<img src=x" not in html and "<b>rad" not in html
    assert "study &lt;img src=x onerror=alert(1)&gt;" in html and "alt&lt;script&gt;" in html
    assert "seed 7" in html and "Completed" in html and "Lynx " in html
    assert not re.search(r"(src|href)=\"https?:", html)  # nothing to fetch: opens offline
    assert html.count("data:image/png;base64,") == 3  # histogram, scatter, convergence


def test_report_caps_the_failed_runs_table():
    html = render(1000, failures_every=2)
    assert f"first {report.FAILED_ROWS} of 500 failed runs" in html
    assert html.count("<tr>") < 300

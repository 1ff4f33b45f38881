"""Through the whole stack: an Ishigami study of a few hundred runs on warm runners, its summary checked against
the analytic truth and against statistics recomputed from runs.csv; the exports, the report and the CLI."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import stats
from synthetic_runs import ISHIGAMI_MEAN, ISHIGAMI_S1

from lynx_cli.stack import Runner, Stack

pytestmark = pytest.mark.e2e
HERE = Path(__file__).parent
REPO = HERE.parents[1]
RUNS = 300
FAIL_ABOVE = 2.8  # the scenario exits 1 when x1 > 2.8 (after writing its outputs)


def _get(base: str, path: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(base + path, timeout=120) as reply:
            return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def _json(base: str, path: str) -> object:
    status, _, body = _get(base, path)
    assert status == 200, (path, status, body[:500])
    return json.loads(body)


def _post(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method="POST", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as reply:
        return json.load(reply)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """`lynx up`'s services and two warm runners of the Ishigami scenario (4 slots each); one finished study."""
    root = tmp_path_factory.mktemp("study")
    env = {
        "LYNX_RUNNER_BASILISK_ENTRYPOINT": str(HERE / "scenarios" / "ishigami.py"),
        "LYNX_RUNNER_CAPABILITIES": "ishigami",
        "LYNX_RUNNER_MAX_CONCURRENT_JOBS": "4",
        "LYNX_RUNNER_OUTPUT_ROOT": str(root / "runs"),
        "LYNX_RUNNER_PRELOAD": "json",
        "LYNX_RUNNER_UPLOAD_ARTIFACTS": "false",
    }
    runners = [Runner(f"ishigami-{i}", env=env) for i in (1, 2)]
    stack = Stack(
        root / "data", runners=runners, runner_config=REPO / "configs" / "lynx-runner-basilisk-warm.yaml", cwd=REPO
    )
    stack.start()
    try:
        base = stack.ports.gateway_url
        body = {
            "name": "ishigami <study>",
            "config": {
                "simulation": {"name": "Ishigami", "type": "ishigami"},
                "monte_carlo": {"runs": RUNS, "sampling_method": "latin_hypercube", "seed": 11},
                "dispersions": {
                    x: {"distribution": {"type": "uniform", "min": -np.pi, "max": np.pi}} for x in ("x1", "x2", "x3")
                },
                "compute": {"max_retries": 0},
            },
        }
        batch_id = _post(base, "/jobs", body)["batch_id"]
        deadline = time.monotonic() + 240
        while _json(base, f"/batches/{batch_id}")["batch"]["status"] not in ("Completed", "Failed", "Cancelled"):
            assert time.monotonic() < deadline, "study did not finish"
            time.sleep(0.5)
        yield base, batch_id
    finally:
        stack.stop()


def test_summary_matches_the_ishigami_truth(study):
    base, batch_id = study
    summary = _json(base, f"/batches/{batch_id}/summary")
    assert summary["runs"]["total"] == summary["runs"]["finished"] == RUNS
    y = summary["outputs"]["ishigami.y"]
    assert y["n"] == RUNS
    lo, hi = y["mean_ci_95"]
    assert lo <= ISHIGAMI_MEAN <= hi
    s1 = {x: summary["sensitivity"]["outputs"]["ishigami.y"][x]["first_order"]["estimate"] for x in ("x1", "x2", "x3")}
    for x, truth in zip(("x1", "x2", "x3"), ISHIGAMI_S1, strict=True):
        assert abs(s1[x] - truth) < 0.1, (x, s1)
    assert s1["x2"] > s1["x1"] > s1["x3"]
    # The failure region x1 > 2.8: the estimate is failed / finished, the intervals scipy's for those counts.
    fp = summary["failure_probability"]
    failed = summary["runs"]["failed"]
    assert failed > 0 and summary["runs"]["failures_by_reason"] == {"exited": failed}
    assert fp["estimate"] == failed / RUNS
    test = stats.binomtest(failed, RUNS)
    assert fp["wilson_95"] == pytest.approx(list(test.proportion_ci(method="wilson")), abs=1e-12)
    assert fp["clopper_pearson_95"] == pytest.approx(list(test.proportion_ci(method="exact")), abs=1e-12)
    assert fp["wilson_95"][0] <= (np.pi - FAIL_ABOVE) / (2 * np.pi) <= fp["wilson_95"][1]
    assert summary["convergence"]["runs"][-1] == RUNS
    assert summary["sensitivity"]["failure"]["x1"]["spearman"] > 0.2  # only x1 drives the failures


def test_runs_csv_and_parquet_agree_with_the_summary(study):
    base, batch_id = study
    summary = _json(base, f"/batches/{batch_id}/summary")
    status, headers, body = _get(base, f"/batches/{batch_id}/runs.csv")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == RUNS and [int(r["run_id"]) for r in rows] == list(range(RUNS))
    assert {
        "job_id",
        "seed",
        "x1",
        "x2",
        "x3",
        "ishigami.y",
        "x1_high",
        "label",
        "status",
        "reason",
        "attempts",
        "seconds",
        "runner",
        "termination_condition",
    } <= set(rows[0])
    y = np.array([float(r["ishigami.y"]) for r in rows])
    x1 = np.array([float(r["x1"]) for r in rows])
    out = summary["outputs"]["ishigami.y"]
    assert out["mean"] == pytest.approx(y.mean(), rel=1e-12)
    assert out["std"] == pytest.approx(y.std(ddof=1), rel=1e-12)
    assert out["percentiles"]["p95"] == pytest.approx(np.percentile(y, 95), rel=1e-12)
    failed = [r for r in rows if r["status"] == "Failed"]
    assert len(failed) == summary["runs"]["failed"] == int((x1 > FAIL_ABOVE).sum())
    assert all(r["x1_high"] == "true" for r in failed)
    assert summary["outputs"]["x1_high"]["mean"] == pytest.approx(len(failed) / RUNS)  # booleans as 0/1
    assert "label" not in summary["outputs"]  # strings are in the table, not in the statistics

    status, headers, body = _get(base, f"/batches/{batch_id}/runs.parquet")
    assert status == 200 and headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(body))
    assert table.num_rows == RUNS
    assert np.allclose(table.column("ishigami.y").to_numpy(), y)


def test_report_and_cli(study, tmp_path):
    base, batch_id = study
    out = tmp_path / "report.html"
    cli = [sys.executable, "-m", "lynx_cli.main"]
    done = subprocess.run(
        [*cli, "report", batch_id, "-o", str(out), "--url", base], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    for section in (
        "Runs",
        "Failure probability",
        "Outputs",
        "Sensitivity",
        "Convergence",
        "Failed runs",
        "Configuration",
    ):
        assert f">{section}</h2>" in html
    assert "ishigami &lt;study&gt;" in html and "<study>" not in html  # the user's name, escaped
    assert "<script" not in html and "http://" not in html.replace(base, "")  # opens offline
    assert html.count("data:image/png;base64,") >= 3

    table = subprocess.run([*cli, "results", batch_id, "--url", base], capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "failure probability:" in table.stdout and "Wilson 95%" in table.stdout
    assert any(line.startswith("ishigami.y") for line in table.stdout.splitlines())
    as_json = subprocess.run(
        [*cli, "results", batch_id, "--json", "--url", base], capture_output=True, text=True, timeout=120
    )
    assert json.loads(as_json.stdout)["runs"]["total"] == RUNS
    jobs = subprocess.run(
        [*cli, "results", batch_id, "--jobs", "--url", base], capture_output=True, text=True, timeout=120
    )
    assert len(jobs.stdout.strip().splitlines()) >= RUNS


def test_unknown_batch_is_a_json_404(study):
    base, _ = study
    for route in ("summary", "runs.csv", "runs.parquet", "report.html"):
        status, headers, body = _get(base, f"/batches/no-such-batch/{route}")
        assert status == 404 and headers["content-type"].startswith("application/json"), route
        assert json.loads(body)["error"]["message"]

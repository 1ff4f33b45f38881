"""`lynx results` (the study's summary as a compact table, or JSON) and `lynx report` (the HTML report)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lynx_cli.api import Api

STATS = ("n", "mean", "mean_ci_95", "std", "min", "p5", "p50", "p95", "max", "wilks_upper")
HEAD = ("n", "mean", "mean 95% CI", "std", "min", "p5", "p50", "p95", "max", "95/95 upper")


def _fmt(x: object) -> str:
    if x is None:
        return "-"
    if isinstance(x, list):
        return f"[{_fmt(x[0])}, {_fmt(x[1])}]"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _row(stats: dict) -> list[str]:
    pct = stats.get("percentiles") or {}
    wilks = stats.get("wilks_95_95") or {}
    values = {**stats, **pct, "wilks_upper": wilks.get("upper")}
    return [_fmt(values.get(k)) for k in STATS]


def _grid(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return [line(head), *(line(r) for r in rows)]


def summary_table(summary: dict) -> str:
    """The summary as text: run counts, failure probability with its intervals, outputs x statistics."""
    runs, fp = summary["runs"], summary["failure_probability"]
    lines = [
        f"runs: {runs['total']} total, {runs['finished']} finished, {runs['succeeded']} succeeded, "
        f"{runs['failed']} failed ({runs['early_terminated']} early-terminated)"
    ]
    if runs["failures_by_reason"]:
        lines.append("failures by reason: " + ", ".join(f"{k} {v}" for k, v in runs["failures_by_reason"].items()))
    lines.append(
        f"failure probability: {_fmt(fp['estimate'])}  Wilson 95% {_fmt(fp['wilson_95'])}  "
        f"Clopper-Pearson 95% {_fmt(fp['clopper_pearson_95'])}"
    )
    for condition, p in fp.get("by_condition", {}).items():
        lines.append(f"  {condition}: {_fmt(p['estimate'])}  Wilson 95% {_fmt(p['wilson_95'])}")
    if summary["outputs"]:
        lines.append("")
        lines += _grid(["output", *HEAD], [[name, *_row(s)] for name, s in summary["outputs"].items()])
    return "\n".join(lines)


def show_summary(api: Api, batch_id: str, as_json: bool) -> dict:
    summary = api.get(f"/batches/{batch_id}/summary")
    print(json.dumps(summary, indent=2) if as_json else summary_table(summary))
    return summary


def cmd_report(args) -> int:
    """Write the batch's HTML report to -o (default report-<batch>.html)."""
    html = Api(args.url, timeout=600.0).get_bytes(f"/batches/{args.batch_id}/report.html")
    out = args.output or Path(f"report-{args.batch_id}.html")
    out.write_bytes(html)
    print(f"wrote {out} ({len(html):,} bytes)")
    return 0


def add_report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    report = sub.add_parser("report", help="write a batch's self-contained HTML report")
    report.add_argument("batch_id")
    report.add_argument("-o", "--output", type=Path, help="file to write (default report-<batch>.html)")
    report.set_defaults(func=cmd_report)
    return report

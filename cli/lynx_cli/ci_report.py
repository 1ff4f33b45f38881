"""The CI files of a finished study: JUnit XML (one test case per run) and a Markdown summary of its answer."""

from __future__ import annotations

import math
import socket
import xml.etree.ElementTree as ET

from lynx_cli.gate import Verdict, is_early, is_failure

STDERR_MARK = "; stderr tail:\n"
WORST_RUNS = 10


def outputs_of(job: dict) -> dict[str, object]:
    """A job result's scalar outputs as {name: value}, whether the gateway sends a map or a list of parameters."""
    raw = (job.get("result") or {}).get("outputs") or {}
    if isinstance(raw, dict):
        return raw
    values = {}
    for p in raw:
        value = p.get("value")
        values[p["name"]] = next(iter(value.values()), None) if isinstance(value, dict) else value
    return values


def _reason(job: dict) -> tuple[str, str, str]:
    """(type, one-line message, stderr tail) of a failed run."""
    result = job.get("result") or {}
    error = result.get("error_message") or ""
    message, _, tail = error.partition(STDERR_MARK)
    kind = result.get("termination_reason") or job.get("status", "").lower() or "failed"
    term = result.get("termination") or {}
    if kind == "early_termination" and term and not message:
        message = f"early termination: {term.get('variable')} {term.get('condition')} (value {term.get('value')})"
    if not message:
        message = f"run ended with status {job.get('status')}"
    return kind, message.splitlines()[0] if message else "", tail


def _count(value: object) -> int:
    """Attempts as a number, whether the gateway sends a count or the attempt history."""
    return len(value) if isinstance(value, list) else int(value or 0)


def junit_xml(batch: dict, jobs: list[dict], verdict: Verdict) -> str:
    """JUnit XML valid against Jenkins' junit-10.xsd: one testsuite per run holds the run's parameters as
    properties (the schema allows properties on a suite, not on a test case) and one testcase."""
    info = batch["batch"]
    name = info.get("name") or info["batch_id"]
    failures = sum(is_failure(j) for j in jobs)
    total_time = sum((j.get("result") or {}).get("execution_time_secs", 0.0) for j in jobs)
    root = ET.Element(
        "testsuites",
        name=f"lynx: {name}",
        tests=str(len(jobs)),
        failures=str(failures),
        errors="0",
        time=f"{total_time:.3f}",
    )
    host = socket.gethostname()
    for job in jobs:
        result = job.get("result") or {}
        seconds = f"{result.get('execution_time_secs', 0.0):.3f}"
        failed = is_failure(job)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{name} run {job['run_id']}",
            tests="1",
            failures=str(int(failed)),
            errors="0",
            skipped="0",
            time=seconds,
            timestamp=info.get("created_at") or "",
            hostname=host,
            id=str(job["run_id"]),
            package=f"lynx.{info['batch_id']}",
        )
        props = ET.SubElement(suite, "properties")
        fixed = {
            "batch_id": info["batch_id"],
            "job_id": job["job_id"],
            "run_id": job["run_id"],
            "seed": job.get("seed", ""),
            "runner_id": job.get("runner_id", ""),
            "attempts": _count(job.get("attempts")),
        }
        for key, value in fixed.items():
            ET.SubElement(props, "property", name=key, value=str(value))
        for key, value in (job.get("parameters") or {}).items():
            ET.SubElement(props, "property", name=f"parameter.{key}", value=str(value))
        for key, value in outputs_of(job).items():
            ET.SubElement(props, "property", name=f"output.{key}", value=str(value))
        case = ET.SubElement(suite, "testcase", name=f"run {job['run_id']}", classname=f"lynx.{name}", time=seconds)
        if failed:
            kind, message, tail = _reason(job)
            failure = ET.SubElement(case, "failure", type=kind, message=message)
            failure.text = f"{message}\nstudy: {verdict.reason}"
            if tail:
                ET.SubElement(case, "system-err").text = tail
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def summary_from_jobs(jobs: list[dict]) -> dict:
    """The `runs` and `failure_probability` parts of the summary, from the jobs, for a gateway without
    GET /batches/{id}/summary; intervals from scipy."""
    from scipy.stats import binomtest

    finished = [j for j in jobs if j.get("status") in ("Completed", "Failed", "Cancelled")]
    failed = [j for j in finished if is_failure(j)]
    reasons: dict[str, int] = {}
    for j in failed:
        key = (j.get("result") or {}).get("termination_reason") or "cancelled"
        reasons[key] = reasons.get(key, 0) + 1
    summary: dict = {
        "runs": {
            "total": len(jobs),
            "finished": len(finished),
            "succeeded": len(finished) - len(failed),
            "failed": len(failed),
            "early_terminated": sum(is_early(j) for j in failed),
            "failures_by_reason": reasons,
        },
        "outputs": {},
    }
    if finished:
        test = binomtest(len(failed), len(finished))
        summary["failure_probability"] = {
            "estimate": len(failed) / len(finished),
            "wilson_95": list(test.proportion_ci(0.95, method="wilson")),
            "clopper_pearson_95": list(test.proportion_ci(0.95, method="exact")),
        }
    return summary


def _num(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value == 0 or not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e6 else f"{value:.3e}"


def _interval(pair: object) -> str:
    return f"[{_num(pair[0])}, {_num(pair[1])}]" if isinstance(pair, (list, tuple)) and len(pair) == 2 else "–"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_markdown(batch: dict, summary: dict, jobs: list[dict], verdict: Verdict) -> str:
    """The study's answer for a CI page: verdict, counts, failure probability with its intervals,
    the outputs table and the worst (failed) runs."""
    info = batch["batch"]
    mark = "✅" if verdict.passed else "❌"
    lines = [
        f"## {mark} Lynx study: {info.get('name') or info['batch_id']}",
        "",
        f"**{verdict.reason}**",
        "",
        f"Batch `{info['batch_id']}` · seed `{info.get('seed')}` · status {info['status']}",
        "",
    ]
    runs = summary.get("runs", {})
    lines += [
        "| runs | finished | succeeded | failed | early-terminated |",
        "|---|---|---|---|---|",
        f"| {runs.get('total', len(jobs))} | {runs.get('finished', '–')} | {runs.get('succeeded', '–')} "
        f"| {runs.get('failed', '–')} | {runs.get('early_terminated', '–')} |",
        "",
    ]
    reasons = runs.get("failures_by_reason") or {}
    if reasons:
        lines += ["Failures by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())), ""]
    fp = summary.get("failure_probability")
    if fp:
        lines += [
            f"**Failure probability** {_num(fp.get('estimate'))} — Wilson 95 % {_interval(fp.get('wilson_95'))}, "
            f"Clopper–Pearson 95 % {_interval(fp.get('clopper_pearson_95'))}",
            "",
        ]
        for condition, v in (fp.get("by_condition") or {}).items():
            lines.append(
                f"- stopped by `{_cell(condition)}`: {_num(v.get('estimate'))}, "
                f"Wilson 95 % {_interval(v.get('wilson_95'))}"
            )
        lines += [""] if fp.get("by_condition") else []
    outputs = summary.get("outputs") or {}
    if outputs:
        lines += [
            "### Outputs",
            "",
            "| output | n | mean | 95 % CI of mean | std | min | p5 | p50 | p95 | max |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, s in outputs.items():
            if not isinstance(s, dict) or "mean" not in s:
                continue
            pct = s.get("percentiles") or {}
            lines.append(
                f"| `{_cell(name)}` | {s.get('n', '–')} | {_num(s['mean'])} "
                f"| {_interval(s.get('mean_ci_95'))} "
                f"| {_num(s.get('std', '–'))} | {_num(s.get('min', '–'))} | {_num(pct.get('p5', '–'))} "
                f"| {_num(pct.get('p50', '–'))} | {_num(pct.get('p95', '–'))} | {_num(s.get('max', '–'))} |"
            )
        lines.append("")
    failed = [j for j in jobs if is_failure(j)]
    lines += ["### Worst runs", ""]
    if not failed:
        lines += ["No run failed.", ""]
    else:
        lines += ["| run | seed | reason | message |", "|---|---|---|---|"]
        for job in failed[:WORST_RUNS]:
            kind, message, _ = _reason(job)
            lines.append(f"| {job['run_id']} | {job.get('seed', '')} | {kind} | {_cell(message)[:200]} |")
        if len(failed) > WORST_RUNS:
            lines.append(f"\n…and {len(failed) - WORST_RUNS} more failed runs (see the runs table).")
        lines.append("")
    return "\n".join(lines)

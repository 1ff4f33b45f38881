"""Exit codes CI can trust: judge a finished study against a failure policy, write CI files, say why in one line."""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from lynx_cli.api import Api, ApiError

# The exit codes of `lynx submit --wait` and `lynx run` (argparse itself exits 2 on bad usage).
PASSED, FAILED, BAD_CONFIG, UNAVAILABLE = 0, 1, 2, 3
EARLY = "early_termination"


@dataclass(frozen=True)
class Policy:
    """How many failed runs a study may have and still pass; by default none."""

    max_failures: int | None = None
    max_failure_rate: float | None = None
    early_termination_fails: bool = True

    def allowed(self, total: int) -> int:
        """The most failures a study of `total` runs may have: the smaller allowance, rates rounded down."""
        limits = []
        if self.max_failures is not None:
            limits.append(self.max_failures)
        if self.max_failure_rate is not None:
            limits.append(math.floor(self.max_failure_rate * total + 1e-9))
        return min(limits, default=0)


@dataclass(frozen=True)
class Verdict:
    """The study's answer for CI: an exit code and the one-line reason."""

    code: int
    reason: str

    @property
    def passed(self) -> bool:
        return self.code == PASSED


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The gate's options, shared by `lynx submit` and `lynx run`."""
    g = parser.add_argument_group(
        "CI gate",
        "exit 0 when the study passes, 1 when it fails, 2 on a bad config, "
        "3 when the stack is unreachable or the batch was cancelled",
    )
    g.add_argument("--max-failures", type=_count, metavar="N", help="pass with at most N failed runs (default 0)")
    g.add_argument(
        "--max-failure-rate", type=_fraction, metavar="X", help="pass with at most this fraction of runs failed (0..1)"
    )
    early = g.add_mutually_exclusive_group()
    early.add_argument(
        "--fail-on-early-termination",
        dest="early_termination_fails",
        action="store_true",
        default=True,
        help="an early-terminated run counts as a failure (default)",
    )
    early.add_argument(
        "--allow-early-termination",
        dest="early_termination_fails",
        action="store_false",
        help="an early-terminated run does not count as a failure",
    )
    g.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML, one test case per run")
    g.add_argument(
        "--summary-md",
        type=Path,
        metavar="FILE",
        help="write the study's answer as Markdown (also appended to $GITHUB_STEP_SUMMARY when set)",
    )
    g.add_argument("--report", type=Path, metavar="FILE", help="save the HTML report")
    g.add_argument("--runs-csv", type=Path, metavar="FILE", help="save the runs table (CSV)")


def policy_from(args: argparse.Namespace) -> Policy:
    return Policy(
        getattr(args, "max_failures", None),
        getattr(args, "max_failure_rate", None),
        getattr(args, "early_termination_fails", True),
    )


def is_early(job: dict) -> bool:
    return (job.get("result") or {}).get("termination_reason") == EARLY


def is_failure(job: dict) -> bool:
    """A run that did not succeed: failed, cancelled, or never finished."""
    return not (job.get("status") == "Completed" and (job.get("result") or {}).get("success", False))


def judge(batch: dict, jobs: list[dict], policy: Policy) -> Verdict:
    """Pass, fail or unavailable for a finished batch (GET /batches/{id}) and its jobs."""
    status = batch["batch"]["status"]
    note = f" ({batch['status_message']})" if batch.get("status_message") else ""
    if status == "Cancelled":
        return Verdict(UNAVAILABLE, f"batch {batch['batch']['batch_id']} was cancelled{note}")
    total = len(jobs)
    failed = [j for j in jobs if is_failure(j)]
    early = [j for j in failed if is_early(j)]
    counted = failed if policy.early_termination_fails else [j for j in failed if not is_early(j)]
    allowed = policy.allowed(total)
    succeeded = total - len(failed)
    early_note = ""
    if early:
        early_note = f", {len(early)} early-terminated" + ("" if policy.early_termination_fails else " (allowed)")
    counts = f"{succeeded}/{total} runs succeeded, {len(failed)} failed{early_note}"
    if status == "Failed" and batch.get("status_message"):  # aborted, e.g. by its failure budget
        return Verdict(FAILED, f"study failed: batch Failed{note}; {counts}")
    if total == 0:
        return Verdict(FAILED, "study failed: the batch has no runs")
    if len(counted) > allowed:
        return Verdict(FAILED, f"study failed: {counts}; {len(counted)} counted against at most {allowed} allowed")
    return Verdict(PASSED, f"study passed: {counts}; {len(counted)} counted, at most {allowed} allowed")


def download(api: Api, path: str, target: Path, timeout: float = 120.0) -> str | None:
    """Save a gateway route's body to `target` (with the Api's token and TLS context); the problem in words
    when it cannot."""
    try:
        with api.open("GET", path, timeout=timeout) as reply:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                while chunk := reply.read(1 << 16):
                    out.write(chunk)
    except ApiError as exc:
        return f"GET {path} answered {exc}"
    except OSError as exc:
        return f"cannot save {path} to {target}: {exc}"
    return None


def fetch_summary(api: Api, batch_id: str, jobs: list[dict]) -> dict:
    """GET /batches/{id}/summary; if this gateway has no such route, the counts computed from the jobs."""
    try:
        return api.get(f"/batches/{batch_id}/summary")
    except ApiError as exc:
        if exc.status != 404:
            raise
    from lynx_cli.ci_report import summary_from_jobs

    return summary_from_jobs(jobs)


def finish(api: Api, batch_id: str, args: argparse.Namespace, out=sys.stdout) -> int:
    """Judge a terminal batch, write the requested CI files, print the reason last; the exit code."""
    from lynx_cli import ci_report

    batch = api.get(f"/batches/{batch_id}")
    jobs = sorted(api.get(f"/batches/{batch_id}/jobs")["jobs"], key=lambda j: j.get("run_id", 0))
    verdict = judge(batch, jobs, policy_from(args))
    warnings = []
    if getattr(args, "junit", None):
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_text(ci_report.junit_xml(batch, jobs, verdict))
        print(f"wrote JUnit XML ({len(jobs)} test cases) to {args.junit}", file=out)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if getattr(args, "summary_md", None) or step_summary:
        markdown = ci_report.summary_markdown(batch, fetch_summary(api, batch_id, jobs), jobs, verdict)
        if getattr(args, "summary_md", None):
            args.summary_md.parent.mkdir(parents=True, exist_ok=True)
            args.summary_md.write_text(markdown)
            print(f"wrote the Markdown summary to {args.summary_md}", file=out)
        if step_summary:
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(markdown + "\n")
    for option, route in (("report", "report.html"), ("runs_csv", "runs.csv")):
        target = getattr(args, option, None)
        if target:
            problem = download(api, f"/batches/{batch_id}/{route}", target)
            if problem:
                warnings.append(problem)
            else:
                print(f"saved {route} to {target}", file=out)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(verdict.reason, file=out, flush=True)
    return verdict.code


def submission_error(exc: ApiError) -> int:
    """The exit code for a rejected submission: 2 for a bad config (HTTP 400) or credentials (401, 403),
    3 when the stack cannot take it (5xx), else 1."""
    if exc.status in (400, 401, 403):
        return BAD_CONFIG
    return UNAVAILABLE if exc.status >= 500 else FAILED

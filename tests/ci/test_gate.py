"""The gate's policy on a finished batch, as the exit code and reason a CI job sees (no stack needed)."""

from __future__ import annotations

import pytest

from lynx_cli.gate import FAILED, PASSED, UNAVAILABLE, Policy, judge


def batch(status: str = "Completed", message: str = "") -> dict:
    return {"batch": {"batch_id": "b1", "status": status}, "status_message": message}


def job(run: int, ok: bool = True, reason: str = "exited", status: str | None = None) -> dict:
    return {
        "run_id": run,
        "status": status or ("Completed" if ok else "Failed"),
        "result": {"success": ok, "termination_reason": reason},
    }


@pytest.mark.parametrize(
    ("policy", "total", "allowed"),
    [
        (Policy(), 25, 0),
        (Policy(max_failures=3), 25, 3),
        (Policy(max_failure_rate=0.1), 25, 2),  # 2.5 rounds down
        (Policy(max_failure_rate=0.29), 100, 29),  # 0.29 * 100 is 28.999999999999996 in floats: still 29
        (Policy(max_failures=1, max_failure_rate=0.5), 10, 1),  # the smaller allowance wins
    ],
)
def test_allowance(policy, total, allowed):
    assert policy.allowed(total) == allowed


def test_early_terminations_count_unless_allowed():
    jobs = [job(0), job(1, ok=False, reason="early_termination"), job(2)]
    strict = judge(batch(), jobs, Policy())
    assert (strict.code, strict.reason) == (
        FAILED,
        "study failed: 2/3 runs succeeded, 1 failed, 1 early-terminated; 1 counted against at most 0 allowed",
    )
    lenient = judge(batch(), jobs, Policy(early_termination_fails=False))
    assert lenient.code == PASSED and "1 early-terminated (allowed); 0 counted" in lenient.reason
    # Allowing early terminations does not excuse other failures.
    crashed = judge(batch(), [*jobs, job(3, ok=False)], Policy(early_termination_fails=False))
    assert crashed.code == FAILED


def test_cancelled_and_aborted_batches():
    assert judge(batch("Cancelled"), [job(0)], Policy()).code == UNAVAILABLE
    aborted = judge(
        batch("Failed", "failure budget exceeded: 2 > 1"), [job(0), job(1, ok=False)], Policy(max_failures=5)
    )
    assert aborted.code == FAILED and "failure budget exceeded" in aborted.reason
    # A job that never finished (cancelled with its aborted batch) is a failure, not a success.
    assert judge(batch(), [job(0), job(1, ok=False, reason="cancelled", status="Cancelled")], Policy()).code == FAILED
    assert judge(batch(), [], Policy()).code == FAILED

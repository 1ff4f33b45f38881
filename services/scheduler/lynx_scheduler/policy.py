"""Pure scheduling decisions: retry, backoff, failure budget, settling an attempt, batch status, fair dispatch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "Pending",
    "Running",
    "Completed",
    "Failed",
    "Cancelled",
)
JOB_STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
DEFAULT_MAX_RETRIES = 2
DEFAULT_BACKOFF_S = 1.0
DEFAULT_BACKOFF_MAX_S = 60.0
DEFAULT_MAX_RUNNER_LOSSES = 3
RUNNER_LOST = "runner_lost"
# How an attempt can end (Ending.kind).
FINISHED, RELEASED, LOST, CANCELLED_KIND = "finished", "released", "lost", "cancelled"


@dataclass(frozen=True)
class RetryPolicy:
    """How a batch treats failed and lost attempts (compute.* with their defaults)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_seconds: float = DEFAULT_BACKOFF_S
    backoff_max_seconds: float = DEFAULT_BACKOFF_MAX_S
    retry_early_termination: bool = False
    max_runner_losses: int = DEFAULT_MAX_RUNNER_LOSSES
    max_failed_jobs: float | None = None  # None: no failure budget


@dataclass(frozen=True)
class Decision:
    """What happens to a job after one of its attempts ended."""

    status: str  # the job's next status
    charge: bool = False  # counts against max_retries
    lost: bool = False  # counts against max_runner_losses
    delay: float = 0.0  # seconds before a retry may be leased


def backoff_delay(retry: int, policy: RetryPolicy) -> float:
    """Seconds before retry number `retry` (from 1): backoff_seconds doubling, capped."""
    if retry < 1 or policy.backoff_seconds <= 0:
        return 0.0
    return min(policy.backoff_seconds * 2.0 ** min(retry - 1, 60), policy.backoff_max_seconds)


def decide_after_failure(reason: str, failures: int, policy: RetryPolicy, stopping: bool = False) -> Decision:
    """A failed attempt: retry with backoff, or fail the job. `failures` counts this one.

    `stopping` means the batch was cancelled or aborted, so nothing is retried.
    """
    if reason == "cancelled":
        return Decision(CANCELLED)
    if stopping:
        return Decision(FAILED, charge=True)
    if reason == "early_termination" and not policy.retry_early_termination:
        return Decision(FAILED, charge=True)
    if failures > policy.max_retries:
        return Decision(FAILED, charge=True)
    return Decision(PENDING, charge=True, delay=backoff_delay(failures, policy))


def decide_after_loss(losses: int, policy: RetryPolicy, stopping: bool = False) -> Decision:
    """An attempt lost with its runner; `losses` counts this one. Not charged to max_retries."""
    if stopping:
        return Decision(CANCELLED, lost=True)
    if losses >= policy.max_runner_losses:
        return Decision(FAILED, lost=True)
    return Decision(PENDING, lost=True)


@dataclass(frozen=True)
class Settlement:
    """What one current attempt's end does: the job's decision, the reason recorded, and the
    (reason, message) of the final result the scheduler writes itself, if it writes one."""

    decision: Decision
    reason: str
    scheduler_result: tuple[str, str] | None = None


def settle(
    kind: str, outcome: str, reason: str, failures: int, losses: int, policy: RetryPolicy, stopping: bool
) -> Settlement:
    """The end of a job's current attempt. `kind` is finished (the runner's report, with its
    `outcome` and `reason`), released, lost or cancelled; `failures` and `losses` are the job's
    counts before this attempt; `stopping`: the batch is cancelled or aborted."""
    if kind == FINISHED:
        if outcome == "completed":
            return Settlement(Decision(COMPLETED), reason)
        return Settlement(decide_after_failure(reason, failures + 1, policy, stopping), reason)
    if kind == LOST:
        decision = decide_after_loss(losses + 1, policy, stopping)
        recorded = RUNNER_LOST
    elif kind == RELEASED:
        decision, recorded = Decision(CANCELLED if stopping else PENDING), RELEASED
    else:
        decision, recorded = Decision(CANCELLED), CANCELLED_KIND
    if decision.status == CANCELLED:
        return Settlement(decision, recorded, ("cancelled", "batch cancelled"))
    if decision.status == FAILED and kind == LOST:
        message = f"lost its runner {losses + 1} times (compute.max_runner_losses)"
        return Settlement(decision, recorded, (RUNNER_LOST, message))
    return Settlement(decision, recorded)


def report_verdict(reported_before: bool, kind: str) -> str:
    """A report of an attempt that already ended: "duplicate" when a runner's report had ended it
    (the runner may have missed the ack), else "stale"."""
    return "duplicate" if reported_before and kind in (FINISHED, RELEASED) else "stale"


def failure_budget(max_failed_jobs: float | None, total_jobs: int) -> float:
    """The most failed jobs a batch may have: a count (>= 1), a fraction of the batch (< 1) or no limit."""
    if max_failed_jobs is None:
        return math.inf
    if max_failed_jobs >= 1:
        return float(max_failed_jobs)
    return max_failed_jobs * total_jobs


def budget_exceeded(failed: int, max_failed_jobs: float | None, total_jobs: int) -> bool:
    """Whether `failed` jobs exceed the batch's failure budget."""
    return failed > failure_budget(max_failed_jobs, total_jobs)


def budget_message(failed: int, max_failed_jobs: float, total_jobs: int) -> str:
    """Batch.status_message of an aborted batch."""
    return (
        f"aborted: {failed} of {total_jobs} jobs failed, exceeding compute.max_failed_jobs = {max_failed_jobs:g}"
        f" (at most {failure_budget(max_failed_jobs, total_jobs):g} failed jobs)"
    )


def batch_status(counts: dict[str, int], cancelled: bool, aborted: bool = False) -> str:
    """Batch status from job counts: Pending, Running, Completed, Failed or Cancelled.

    A terminal status is reported only once every job is terminal, so a cancelled batch
    reads Running until its last running job has been killed. A batch aborted by its
    failure budget ends Failed.
    """
    total = sum(counts.values())
    if total and sum(counts.get(s, 0) for s in TERMINAL) == total:
        if aborted:
            return FAILED
        if cancelled:
            return CANCELLED
        return COMPLETED if counts.get(COMPLETED, 0) else FAILED
    if counts.get(PENDING, 0) == total:
        return PENDING
    return RUNNING


def throughput_per_minute(finished: int, started_at: float | None, until: float) -> float:
    """Finished jobs per minute since the first job started."""
    if not finished or started_at is None or until <= started_at:
        return 0.0
    return round(finished / ((until - started_at) / 60.0), 3)


def estimate_minutes(remaining: int, throughput: float) -> float | None:
    """Minutes until the remaining jobs finish at the measured throughput, if measured."""
    if throughput <= 0:
        return None
    return round(remaining / throughput, 2)


@dataclass
class Candidate:
    """A batch in one dispatch pass: its running count, room under max_parallel_jobs, its due
    jobs (in run order) and the runners with free slots that serve it."""

    batch: object
    running: int
    room: float
    age: float  # created_at: older batches win ties
    jobs: list
    runners: list


def fair_plan(candidates: Sequence[Candidate], free: dict[str, int], key: Callable[[object], str],
              starts: dict[str, int] | None = None) -> list[tuple]:
    """Assign free slots one at a time to the candidate with the fewest running jobs (then the
    oldest), each on the serving runner with the most free slots left; `free` is leases per
    runner key, `starts` (default `free`) how many of them the runner would start at once rather
    than queue: a runner that starts the job now is preferred. Returns [(runner, candidate, job)]
    in assignment order."""
    taken: dict[str, int] = {}
    plan = []
    queues = {id(c): list(reversed(c.jobs)) for c in candidates}
    starts = free if starts is None else starts

    def slots(r) -> int:
        return free.get(key(r), 0) - taken.get(key(r), 0)

    def rank(r) -> tuple[int, int]:
        return starts.get(key(r), 0) - taken.get(key(r), 0), slots(r)

    running = {id(c): c.running for c in candidates}
    room = {id(c): c.room for c in candidates}
    while True:
        ready = [c for c in candidates
                 if queues[id(c)] and room[id(c)] > 0 and any(slots(r) > 0 for r in c.runners)]
        if not ready:
            return plan
        cand = min(ready, key=lambda c: (running[id(c)], c.age))
        runner = max((r for r in cand.runners if slots(r) > 0), key=rank)
        plan.append((runner, cand, queues[id(cand)].pop()))
        taken[key(runner)] = taken.get(key(runner), 0) + 1
        running[id(cand)] += 1
        room[id(cand)] -= 1

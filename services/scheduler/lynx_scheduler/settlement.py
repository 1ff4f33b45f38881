"""Ending attempts exactly once: endings queued from every runner are settled by policy and committed in groups."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from lynx_scheduler import policy
from lynx_scheduler.convert import scheduler_result
from lynx_scheduler.policy import FAILED, RUNNING, TERMINAL, RetryPolicy
from lynx_scheduler.rows import AttemptEnd, BatchRow, JobMove, JobRow, Report
from lynx_scheduler.store import Store
from lynx_scheduler.transaction import Tx

SETTLE_GROUP = 500  # attempt endings committed in one transaction at most


@dataclass(frozen=True)
class Ending:
    """One attempt to end: which, who says so (None: the scheduler), how, and the batch's policy."""

    job_id: str
    attempt: int
    runner_id: str | None
    kind: str  # finished, released, lost, cancelled
    report: Report
    policy: RetryPolicy


@dataclass
class Settled:
    """What settling did: 'accepted', 'duplicate' (already accepted), 'stale' or 'unknown'."""

    verdict: str
    job: JobRow | None = None
    status: str = ""
    aborted_now: bool = False  # this ending pushed its batch over its failure budget


class Settler:
    """Queues endings and commits them in groups of up to SETTLE_GROUP, one transaction each."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: list[tuple[Ending, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def settle(self, ending: Ending) -> Settled:
        """End one attempt (grouped with concurrent calls into one transaction)."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((ending, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="settler")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue[:SETTLE_GROUP], self._queue[SETTLE_GROUP:]
            try:
                results = await settle_many(self.store, [e for e, _ in group], time.time())
            except Exception as exc:  # noqa: BLE001 - every waiter hears about it
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), settled in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(settled)


async def settle_many(store: Store, endings: list[Ending], now: float) -> list[Settled]:
    """End attempts, each exactly once, and move their jobs on, in one transaction.

    A report of an attempt that already ended is counted in ignored_reports and changes
    nothing; "unknown" when there is no such attempt of that runner."""
    async with store.transaction() as tx:
        job_ids = sorted({e.job_id for e in endings})
        jobs = await tx.jobs_by_id(job_ids)
        attempts = await tx.attempts_by_key(job_ids)
        batches: dict[str, BatchRow] = {}
        for job in jobs.values():
            if job.batch_id not in batches:
                batches[job.batch_id] = await tx.batch(job.batch_id)
        out: list[Settled] = []
        ends, moves, ignored = [], [], []
        failed: dict[str, RetryPolicy] = {}
        finished: set[str] = set()
        for e in endings:
            job, att = jobs.get(e.job_id), attempts.get((e.job_id, e.attempt))
            if job is None or att is None or (e.runner_id is not None and att.runner_id != e.runner_id):
                out.append(Settled("unknown", job))
                continue
            if not (att.outcome == "running" and job.status == RUNNING and job.attempts == e.attempt):
                if e.report.reported:  # a runner's report, not the scheduler's own ending
                    ignored.append((e.job_id, e.attempt))
                    att.ignored_reports += 1
                out.append(Settled(policy.report_verdict(att.reported, e.kind), job, job.status))
                continue
            batch = batches[job.batch_id]
            stopping = batch.cancelled or batch.aborted
            r = e.report
            s = policy.settle(e.kind, r.outcome, r.reason, job.failures, job.runner_losses, e.policy, stopping)
            d = s.decision
            result = r.result if e.kind == policy.FINISHED else None
            if s.scheduler_result is not None:
                result = scheduler_result(*s.scheduler_result, attempt=e.attempt)
            terminal = d.status in TERMINAL
            ends.append(AttemptEnd(e.job_id, e.attempt, now, r.outcome, r.exit_code, s.reason, r.error_message,
                                   r.reported))
            moves.append(JobMove(e.job_id, d.status, result, s.reason, d.charge, d.lost, now + d.delay,
                                 now if terminal else None))
            att.outcome, att.reported = r.outcome, r.reported
            job.status, job.not_before = d.status, now + d.delay
            job.failures += int(d.charge)
            job.runner_losses += int(d.lost)
            if d.status == FAILED and not stopping:
                failed[batch.batch_id] = e.policy
            if terminal:
                finished.add(batch.batch_id)
            out.append(Settled("accepted", job, d.status))
        if ignored:
            await tx.count_ignored(ignored)
        if not ends:
            return out
        await tx.end_attempts(ends)
        await tx.move_jobs(moves)
        aborted = set()
        for batch_id, retry in failed.items():
            if await _apply_budget(tx, batches[batch_id], retry, now):
                aborted.add(batch_id)
        for batch_id in finished:
            await tx.stamp_finished(batch_id, now)
    for settled in out:
        if settled.verdict == "accepted" and settled.job.batch_id in aborted:
            settled.aborted_now = True
            aborted.discard(settled.job.batch_id)  # one caller acts on the abort
    return out


async def _apply_budget(tx: Tx, batch: BatchRow, retry: RetryPolicy, now: float) -> bool:
    """Abort the batch when its failed jobs exceed compute.max_failed_jobs."""
    if retry.max_failed_jobs is None:
        return False
    failed = await tx.failed_jobs(batch.batch_id)
    if not policy.budget_exceeded(failed, retry.max_failed_jobs, batch.total_jobs):
        return False
    message = policy.budget_message(failed, retry.max_failed_jobs, batch.total_jobs)
    await tx.abort_batch(batch.batch_id, message)
    await tx.cancel_pending(batch.batch_id, now, scheduler_result("cancelled", "batch aborted: " + message))
    return True

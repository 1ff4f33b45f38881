"""The dispatcher: a loop that hands pending jobs to free runner slots fairly, within each batch's limits."""

from __future__ import annotations

import asyncio
import logging
import math
import time

from lynx_scheduler import policy
from lynx_scheduler.columns import SampleCache
from lynx_scheduler.convert import job_lease
from lynx_scheduler.sessions import RunnerSession, Sessions
from lynx_scheduler.store import Store
from lynx_scheduler.validation import Configs

log = logging.getLogger(__name__)
COALESCE_S = 0.01  # a dispatch pass waits this long after a wake-up, to lease in bulk


class Dispatcher:
    """Matches pending jobs to runner sessions; one dispatch pass at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.configs = Configs(self._config_blob)
        self.samples = SampleCache(store.sample)
        self.sessions = Sessions(store, self.configs, self.wake, self._note_due)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._next_due: float | None = None  # wall-clock time of the next backed-off retry

    async def _config_blob(self, batch_id: str) -> bytes:
        return (await self.store.get_batch(batch_id, with_counts=False)).config

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="dispatcher")

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.sessions.close()

    def wake(self) -> None:
        """Ask for a dispatch pass (after a submit, a result, a new runner...)."""
        self._wake.set()

    def _note_due(self, not_before: float) -> None:
        """Remember when a backed-off retry becomes due, so the loop wakes for it."""
        if not_before > time.time() and (self._next_due is None or not_before < self._next_due):
            self._next_due = not_before

    async def _loop(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            try:
                async with asyncio.timeout(self._sleep_for()):
                    await self._wake.wait()
            except TimeoutError:
                pass
            await asyncio.sleep(COALESCE_S)  # let slots freed together be filled in one pass
            self._wake.clear()
            try:
                await self.sessions.expire_silent()
                await self._dispatch()
            except Exception:  # noqa: BLE001 - the loop must outlive one bad pass
                log.exception("dispatch pass failed")

    def _sleep_for(self) -> float:
        """Up to 1 s, less when a backed-off retry or a lease expiry is due sooner."""
        delay = 1.0
        if self._next_due is not None:
            delay = min(delay, self._next_due - time.time())
        expiry = self.sessions.next_expiry()
        if expiry is not None:
            delay = min(delay, expiry - time.monotonic())
        return max(0.02, delay)

    async def _dispatch(self) -> None:
        """One pass: each free slot goes to the active batch with the fewest running jobs (ties: the
        older batch) among those the slot's runner serves, within each batch's max_parallel_jobs."""
        free = self.sessions.free()
        if not free:
            return
        now = time.time()
        if self._next_due is not None and self._next_due <= now:
            self._next_due = None
        budget = sum(s.free for s in free)
        candidates = []
        for batch, running in await self.store.active_batches():
            runners = [s for s in free if s.serves(batch.engine, batch.sim_type)]
            room = (batch.max_parallel or math.inf) - running
            if room <= 0:  # at its max_parallel_jobs: only leases held ahead, where they cannot raise it
                runners = [s for s in runners if s.queues_only_behind(batch.batch_id)]
                room = sum(s.free for s in runners)
            if room <= 0 or not runners:
                continue
            jobs = await self.store.pending_jobs(batch.batch_id, int(min(room, budget)), now)
            if not jobs:
                due = await self.store.next_not_before(batch.batch_id, now)
                if due is not None:
                    self._note_due(due)
                continue
            candidates.append(policy.Candidate(batch, running, room, batch.created_at, jobs, runners))
        plan = policy.fair_plan(candidates, {s.runner_id: s.free for s in free}, _runner_key,
                                {s.runner_id: s.free_slots for s in free})
        if plan:
            await self._lease(plan)

    async def _lease(self, plan: list[tuple[RunnerSession, policy.Candidate, object]]) -> None:
        attempts = await self.store.lease_many([(job.job_id, s.runner_id) for s, _, job in plan], time.time())
        for (session, cand, job), attempt in zip(plan, attempts, strict=True):
            if not attempt:
                continue
            batch = cand.batch
            config = await self.configs.config(batch.batch_id, batch.config)
            await self.sessions.grant(session, job_lease(batch, config, job, attempt, await self.samples.of(job)))


def _runner_key(session: RunnerSession) -> str:
    return session.runner_id

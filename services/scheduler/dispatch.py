"""Runner sessions and the dispatcher: who holds which lease, and handing out pending jobs."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass, field

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.seeds import run_seed
from lynx_scheduler import core
from lynx_scheduler.store import Store

log = logging.getLogger(__name__)
# A runner silent for this many heartbeat intervals loses its leases.
LEASE_TTL_HEARTBEATS = 3.0


@dataclass
class RunnerSession:
    """One live Connect stream; `outbox` feeds the stream's responses."""

    runner_id: str
    engines: frozenset[str]
    simulation_types: frozenset[str]
    capacity: int
    heartbeat_interval: float
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    leases: dict[str, int] = field(default_factory=dict)  # job_id -> attempt
    last_seen: float = field(default_factory=time.monotonic)
    closed: bool = False

    @property
    def free(self) -> int:
        return 0 if self.closed else max(0, self.capacity - len(self.leases))

    def serves(self, engine: str, simulation_type: str) -> bool:
        """Whether this runner has the engine and lists the simulation type in its capabilities."""
        return engine in self.engines and simulation_type in self.simulation_types

    def expired(self, now: float) -> bool:
        return now - self.last_seen > LEASE_TTL_HEARTBEATS * max(self.heartbeat_interval, 0.5)


class Dispatcher:
    """Matches pending jobs to runner sessions; one dispatch pass at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.sessions: dict[str, RunnerSession] = {}
        self._wake = asyncio.Event()
        self._configs: dict[str, cfg.BatchConfig] = {}
        self._task: asyncio.Task | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="dispatcher")

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def wake(self) -> None:
        """Ask for a dispatch pass (after a submit, a result, a new runner...)."""
        self._wake.set()

    async def config(self, batch_id: str, blob: bytes | None = None) -> cfg.BatchConfig:
        """The batch's parsed config, cached."""
        if batch_id not in self._configs:
            if blob is None:
                batch = await self.store.get_batch(batch_id, with_counts=False)
                blob = batch.config
            self._configs[batch_id] = cfg.BatchConfig.FromString(blob)
        return self._configs[batch_id]

    async def _loop(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            try:
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._expire_silent_runners()
                await self._dispatch()
            except Exception:  # noqa: BLE001 - the loop must outlive one bad pass
                log.exception("dispatch pass failed")

    async def _expire_silent_runners(self) -> None:
        now = time.monotonic()
        for session in list(self.sessions.values()):
            if session.expired(now):
                log.warning("runner %s silent past its lease TTL", session.runner_id)
                await self.drop_session(session)

    async def drop_session(self, session: RunnerSession) -> None:
        """Forget a runner's stream and requeue what it held (not charged to retries)."""
        if self.sessions.get(session.runner_id) is session:
            del self.sessions[session.runner_id]
        session.closed = True
        session.outbox.put_nowait(None)
        if self._stopping:  # shutting down: the store may be closed; restart requeues anyway
            return
        if session.leases:
            log.warning("requeueing %d jobs of runner %s", len(session.leases), session.runner_id)
            await self.store.requeue(list(session.leases))
            session.leases.clear()
        await self.store.set_runner_online(session.runner_id, False)
        self.wake()

    async def _dispatch(self) -> None:
        if not any(s.free for s in self.sessions.values()):
            return
        for batch in await self.store.active_batches():
            config = await self.config(batch.batch_id, batch.config)
            cap = batch.max_parallel or math.inf
            room = cap - await self.store.running_count(batch.batch_id)
            sessions = [s for s in self.sessions.values() if s.free and s.serves(batch.engine, batch.sim_type)]
            if room <= 0 or not sessions:
                continue
            want = int(min(room, sum(s.free for s in sessions)))
            for job in await self.store.pending_jobs(batch.batch_id, want):
                session = max(sessions, key=lambda s: s.free)
                if not session.free:
                    break
                await self._lease(session, batch, config, job)

    async def _lease(self, session, batch, config: cfg.BatchConfig, job) -> None:
        attempt = await self.store.lease(job.job_id, session.runner_id, time.time())
        session.leases[job.job_id] = attempt
        document = core.run_config(
            job.run_id,
            job.parameters,
            config,
            batch.created_at,
            {
                "batch_id": batch.batch_id,
                "job_id": job.job_id,
                "batch_seed": batch.seed,
                "seed": run_seed(batch.seed, job.run_id),
            },
        )
        lease = pb.JobLease(
            job_id=job.job_id,
            batch_id=batch.batch_id,
            attempt=attempt,
            engine=batch.engine,
            run_config_json=json.dumps(document),
            timeout_seconds=config.compute.job_timeout_seconds,
            early_termination=config.early_termination,
            telemetry=config.telemetry,
        )
        log.info("leased job %s (attempt %d) to %s", job.job_id, attempt, session.runner_id)
        session.outbox.put_nowait(pb.ConnectResponse(lease=lease))

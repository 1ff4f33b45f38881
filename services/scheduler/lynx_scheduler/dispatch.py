"""Runner sessions and the dispatcher: who holds which lease, handing out pending jobs fairly,
reconciling what runners say they run, and ending attempts exactly once."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass, field

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_sampler.seeds import run_seed
from lynx_scheduler import core
from lynx_scheduler.store import BatchRow, Ending, JobRow, Report, Settled, Store

log = logging.getLogger(__name__)
# A runner silent for this many heartbeat intervals loses its leases (the lease TTL).
LEASE_TTL_HEARTBEATS = 3.0
MIN_HEARTBEAT_S = 0.1
# After a scheduler restart, runners get at least this long to re-register with their jobs.
RESTART_GRACE_MIN_S = 5.0
COALESCE_S = 0.01  # a dispatch pass waits this long after a wake-up, to lease in bulk
SETTLE_GROUP = 500  # attempt endings committed in one transaction at most


@dataclass
class Lease:
    """One attempt a runner holds. `confirmed`: the runner said it runs it (JobStarted, a
    heartbeat or its registration); `generation`: the stream the lease was sent on."""

    def judged_by(self, session: RunnerSession, now: float) -> bool:
        """Whether a heartbeat that does not list this lease means the runner does not have it:
        the runner confirmed it before, it was sent on an older stream, or it is older than a TTL
        (a runner starts every lease at once)."""
        return self.confirmed or self.generation < session.generation or now - self.leased_at > session.ttl

    attempt: int
    batch_id: str
    generation: int
    confirmed: bool = False
    leased_at: float = field(default_factory=time.monotonic)


@dataclass
class RunnerSession:
    """One runner as the scheduler sees it. It outlives a stream: a runner that reconnects
    within its lease TTL gets the same session back, leases included."""

    runner_id: str
    engines: frozenset[str]
    simulation_types: frozenset[str]
    capacity: int
    heartbeat_interval: float
    outbox: asyncio.Queue | None = field(default_factory=asyncio.Queue)
    leases: dict[str, Lease] = field(default_factory=dict)
    last_seen: float = field(default_factory=time.monotonic)
    expires_at: float = 0.0
    generation: int = 1
    draining: bool = False

    def __post_init__(self) -> None:
        if not self.expires_at:
            self.touch(self.last_seen)

    @property
    def ttl(self) -> float:
        """Lease TTL: LEASE_TTL_HEARTBEATS x the runner's heartbeat interval."""
        return LEASE_TTL_HEARTBEATS * max(self.heartbeat_interval, MIN_HEARTBEAT_S)

    @property
    def connected(self) -> bool:
        return self.outbox is not None

    @property
    def closed(self) -> bool:
        return self.outbox is None

    @property
    def free(self) -> int:
        if not self.connected or self.draining:
            return 0
        return max(0, self.capacity - len(self.leases))

    def touch(self, now: float | None = None) -> None:
        """The runner spoke: its leases live another TTL."""
        self.last_seen = time.monotonic() if now is None else now
        self.expires_at = self.last_seen + self.ttl

    def serves(self, engine: str, simulation_type: str) -> bool:
        """Whether this runner has the engine and lists the simulation type in its capabilities."""
        return engine in self.engines and simulation_type in self.simulation_types

    def expired(self, now: float) -> bool:
        return now > self.expires_at

    def send(self, message: pb.ConnectResponse) -> bool:
        """Queue a message on the live stream; False when there is none."""
        if self.outbox is None:
            return False
        self.outbox.put_nowait(message)
        return True

    def detach(self) -> None:
        """End the current stream (the runner keeps its leases until they expire)."""
        if self.outbox is not None:
            self.outbox.put_nowait(None)
        self.outbox = None


@dataclass
class _Candidate:
    """A batch in one dispatch pass."""

    batch: BatchRow
    config: cfg.BatchConfig
    running: int
    room: float
    jobs: list[JobRow]
    sessions: list[RunnerSession]


class Dispatcher:
    """Matches pending jobs to runner sessions; one dispatch pass at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.sessions: dict[str, RunnerSession] = {}
        self._wake = asyncio.Event()
        self._configs: dict[str, cfg.BatchConfig] = {}
        self._policies: dict[str, core.RetryPolicy] = {}
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._next_due: float | None = None  # wall-clock time of the next backed-off retry
        self._endings: list[tuple[Ending, asyncio.Future]] = []
        self._settler: asyncio.Task | None = None

    @property
    def stopping(self) -> bool:
        """Whether stop() was called (the store may be closing)."""
        return self._stopping

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="dispatcher")

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for session in self.sessions.values():
            session.detach()

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

    async def policy(self, batch_id: str) -> core.RetryPolicy:
        """The batch's retry policy (compute.* with defaults), cached."""
        if batch_id not in self._policies:
            self._policies[batch_id] = core.RetryPolicy.of(await self.config(batch_id))
        return self._policies[batch_id]

    # ---- restart ----------------------------------------------------------------------------

    async def adopt_running(self) -> int:
        """At start-up: every running job stays leased to its runner for a grace window
        (max(lease TTL, RESTART_GRACE_MIN_S)); a runner that re-registers with it keeps it,
        otherwise it is requeued as a runner loss when the window closes."""
        runners = {r.runner_id: r for r in await self.store.list_runners()}
        leases = await self.store.running_leases()
        now = time.monotonic()
        for job_id, attempt, runner_id, batch_id in leases:
            session = self.sessions.get(runner_id)
            if session is None:
                row = runners.get(runner_id)
                interval = row.heartbeat_interval if row else 2.0
                session = RunnerSession(runner_id, frozenset(), frozenset(), 0, interval, outbox=None)
                session.expires_at = now + max(session.ttl, RESTART_GRACE_MIN_S)
                self.sessions[runner_id] = session
            session.leases[job_id] = Lease(attempt, batch_id, generation=0, confirmed=True)
        return len(leases)

    # ---- the loop ---------------------------------------------------------------------------

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
                await self._expire_silent_runners()
                await self._dispatch()
            except Exception:  # noqa: BLE001 - the loop must outlive one bad pass
                log.exception("dispatch pass failed")

    def _sleep_for(self) -> float:
        """Up to 1 s, less when a backed-off retry or a lease expiry is due sooner."""
        delay = 1.0
        if self._next_due is not None:
            delay = min(delay, self._next_due - time.time())
        if self.sessions:
            delay = min(delay, min(s.expires_at for s in self.sessions.values()) - time.monotonic())
        return max(0.02, delay)

    async def _expire_silent_runners(self) -> None:
        now = time.monotonic()
        for session in list(self.sessions.values()):
            if session.expired(now):
                log.warning("runner %s silent past its lease TTL (%.1f s); %d leases lost",
                            session.runner_id, session.ttl, len(session.leases))
                await self.drop_session(session)

    async def drop_session(self, session: RunnerSession) -> None:
        """Forget a runner whose TTL passed: end its stream and requeue what it held as runner losses."""
        if self.sessions.get(session.runner_id) is session:
            del self.sessions[session.runner_id]
        session.detach()
        if self._stopping:  # shutting down: the store may be closed; a restart reconciles
            return
        leases, session.leases = dict(session.leases), {}
        for job_id, lease in leases.items():
            await self.end_attempt(session.runner_id, job_id, lease, "lost", Report("runner_lost", reported=False))
        await self.store.set_runner_online(session.runner_id, False)
        self.wake()

    # ---- ending attempts ----------------------------------------------------------------------

    async def end_attempt(
        self, runner_id: str | None, job_id: str, lease: Lease | None, kind: str, report: Report,
        attempt: int | None = None,
    ) -> Settled:
        """Settle one attempt in the store and act on the outcome (abort the batch when its
        failure budget is exceeded). `runner_id` None means the scheduler ends it itself.

        Concurrent calls are grouped into one store transaction (group commit)."""
        batch_id = lease.batch_id if lease else None
        if batch_id is None:
            job = await self.store.get_job(job_id)
            if job is None:
                return Settled("unknown")
            batch_id = job.batch_id
        number = attempt if attempt is not None else lease.attempt
        ending = Ending(job_id, number, runner_id, kind, report, await self.policy(batch_id))
        future = asyncio.get_running_loop().create_future()
        self._endings.append((ending, future))
        if self._settler is None or self._settler.done():
            self._settler = asyncio.create_task(self._settle_endings(), name="settler")
        settled = await future
        if settled.verdict == "accepted":
            log.debug("job %s attempt %d %s -> %s", job_id, number, kind, settled.status)
            if settled.status == core.PENDING:
                self._note_due(settled.job)
            if settled.aborted_now:
                log.warning("batch %s exceeded its failure budget; aborting", batch_id)
                await self.kill_running(batch_id, "batch aborted: failure budget exceeded")
        return settled

    async def _settle_endings(self) -> None:
        """Drain the queued endings, up to SETTLE_GROUP at a time, one transaction per group."""
        while self._endings:
            group, self._endings = self._endings[:SETTLE_GROUP], self._endings[SETTLE_GROUP:]
            try:
                results = await self.store.settle_many([e for e, _ in group], time.time())
            except Exception as exc:  # noqa: BLE001 - every waiter hears about it
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), settled in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(settled)

    def _note_due(self, job: JobRow | None) -> None:
        """Remember when a backed-off retry becomes due, so the loop wakes for it."""
        if job is None:
            return
        if job.not_before > time.time() and (self._next_due is None or job.not_before < self._next_due):
            self._next_due = job.not_before

    async def kill_running(self, batch_id: str, reason: str) -> int:
        """Stop a batch's running jobs: CancelJob to runners that hold them on a live stream;
        jobs whose runner is away are cancelled here (a runner that comes back is told to kill them)."""
        killed = 0
        for job in await self.store.batch_jobs(batch_id, (core.RUNNING,)):
            session = self.sessions.get(job.runner_id or "")
            lease = session.leases.get(job.job_id) if session else None
            if session and lease and lease.attempt == job.attempts and session.send(
                pb.ConnectResponse(cancel=pb.CancelJob(job_id=job.job_id, reason=reason))
            ):
                killed += 1
                continue
            if session and lease:
                session.leases.pop(job.job_id, None)
            settled = await self.end_attempt(
                None, job.job_id, None, "cancelled", Report("cancelled", reason="cancelled", reported=False),
                attempt=job.attempts,
            )
            killed += settled.verdict == "accepted"
        self.wake()
        return killed

    # ---- reconciliation ------------------------------------------------------------------------

    def reconcile_register(self, session: RunnerSession, running: dict[str, int]) -> None:
        """A (re)registered runner lists what it runs: it keeps the jobs still leased to it at
        that attempt; anything else it is told to kill. Leases it does not list are judged at
        its first heartbeat, after it has resent its unacknowledged reports."""
        for job_id, attempt in running.items():
            lease = session.leases.get(job_id)
            if lease is not None and lease.attempt == attempt:
                lease.confirmed = True
                lease.generation = session.generation
                log.info("runner %s kept job %s (attempt %d) across a reconnect", session.runner_id, job_id, attempt)
            else:
                self._cancel_stale(session, job_id, attempt)

    async def reconcile_heartbeat(self, session: RunnerSession, running: dict[str, int]) -> None:
        """Heartbeat.running_jobs against the leases: unknown or stale attempts are killed; a
        lease the runner no longer runs (and has not reported) was lost with it."""
        for job_id, attempt in running.items():
            lease = session.leases.get(job_id)
            if lease is None or lease.attempt != attempt:
                self._cancel_stale(session, job_id, attempt)
            else:
                lease.confirmed = True
        now = time.monotonic()
        for job_id, lease in list(session.leases.items()):
            if job_id in running or not lease.judged_by(session, now):
                continue
            log.warning("runner %s no longer runs job %s (attempt %d); lost", session.runner_id, job_id, lease.attempt)
            session.leases.pop(job_id, None)
            await self.end_attempt(session.runner_id, job_id, lease, "lost", Report("runner_lost", reported=False))
            self.wake()

    def _cancel_stale(self, session: RunnerSession, job_id: str, attempt: int) -> None:
        log.warning("runner %s runs job %s attempt %d, which is not its lease; cancelling it",
                    session.runner_id, job_id, attempt)
        session.send(pb.ConnectResponse(
            cancel=pb.CancelJob(job_id=job_id, reason=f"attempt {attempt} is no longer leased to this runner")
        ))

    # ---- routing ----------------------------------------------------------------------------------

    def routing_message(self, batch: BatchRow) -> str:
        """Why a batch with pending jobs is waiting, when no connected runner can serve it."""
        if batch.cancelled or batch.aborted or not batch.counts.get(core.PENDING):
            return ""
        live = [s for s in self.sessions.values() if s.connected and not s.draining]
        if any(s.serves(batch.engine, batch.sim_type) for s in live):
            return ""
        return (f"no connected runner serves simulation type {batch.sim_type!r} (engine {batch.engine!r})")

    # ---- dispatch ---------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        """One pass: each free slot goes to the active batch with the fewest running jobs (ties: the
        older batch) among those the slot's runner serves, within each batch's max_parallel_jobs."""
        free = [s for s in self.sessions.values() if s.free]
        if not free:
            return
        now = time.time()
        if self._next_due is not None and self._next_due <= now:
            self._next_due = None
        budget = sum(s.free for s in free)
        candidates = []
        for batch, running in await self.store.active_batches():
            sessions = [s for s in free if s.serves(batch.engine, batch.sim_type)]
            room = (batch.max_parallel or math.inf) - running
            if room <= 0 or not sessions:
                continue
            jobs = await self.store.pending_jobs(batch.batch_id, int(min(room, budget)), now)
            if not jobs:
                due = await self.store.next_not_before(batch.batch_id, now)
                if due is not None and (self._next_due is None or due < self._next_due):
                    self._next_due = due
                continue
            config = await self.config(batch.batch_id, batch.config)
            candidates.append(_Candidate(batch, config, running, room, jobs[::-1], sessions))
        plan = _fair_plan(candidates)
        if plan:
            await self._lease(plan)

    async def _lease(self, plan: list[tuple[RunnerSession, _Candidate, JobRow]]) -> None:
        attempts = await self.store.lease_many([(job.job_id, s.runner_id) for s, _, job in plan], time.time())
        for (session, cand, job), attempt in zip(plan, attempts, strict=True):
            if not attempt:
                continue
            lease = Lease(attempt, cand.batch.batch_id, session.generation)
            session.leases[job.job_id] = lease
            if session.send(pb.ConnectResponse(lease=self._job_lease(cand, job, attempt))):
                log.debug("leased job %s (attempt %d) to %s", job.job_id, attempt, session.runner_id)
                continue
            # The stream went away while the lease was being written: hand the job straight back.
            session.leases.pop(job.job_id, None)
            await self.end_attempt(None, job.job_id, lease, "released", Report(
                "released", reason="released", error_message="runner disconnected before the lease was sent",
                reported=False))
            self.wake()

    @staticmethod
    def _job_lease(cand: _Candidate, job: JobRow, attempt: int) -> pb.JobLease:
        batch, config = cand.batch, cand.config
        document = core.run_config(
            job.run_id, job.parameters, config, batch.created_at,
            {
                "batch_id": batch.batch_id,
                "job_id": job.job_id,
                "batch_seed": batch.seed,
                "seed": run_seed(batch.seed, job.run_id),
            },
        )
        return pb.JobLease(
            job_id=job.job_id,
            batch_id=batch.batch_id,
            attempt=attempt,
            engine=batch.engine,
            run_config_json=json.dumps(document),
            timeout_seconds=config.compute.job_timeout_seconds,
            early_termination=config.early_termination,
            telemetry=config.telemetry,
            compute=config.compute,
        )


def _fair_plan(candidates: list[_Candidate]) -> list[tuple[RunnerSession, _Candidate, JobRow]]:
    """Assign free slots one at a time to the candidate with the fewest running jobs (then the
    oldest), each on the serving runner with the most free slots."""
    taken: dict[str, int] = {}
    plan = []

    def slots(s: RunnerSession) -> int:
        return s.free - taken.get(s.runner_id, 0)

    while True:
        ready = [c for c in candidates if c.jobs and c.room > 0 and any(slots(s) > 0 for s in c.sessions)]
        if not ready:
            return plan
        cand = min(ready, key=lambda c: (c.running, c.batch.created_at))
        session = max((s for s in cand.sessions if slots(s) > 0), key=slots)
        plan.append((session, cand, cand.jobs.pop()))
        taken[session.runner_id] = taken.get(session.runner_id, 0) + 1
        cand.running += 1
        cand.room -= 1

"""The runner session protocol: attach (register), heartbeat, reports, reconciliation, lease loss."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.errors import ValidationError
from lynx_common.security import Principal
from lynx_scheduler import policy
from lynx_scheduler.convert import finished_report
from lynx_scheduler.rows import BatchRow, Report, RunnerRow
from lynx_scheduler.settlement import Ending, Settled, Settler
from lynx_scheduler.store import Store
from lynx_scheduler.validation import Configs

log = logging.getLogger(__name__)
# A runner silent for this many heartbeat intervals loses its leases (the lease TTL).
LEASE_TTL_HEARTBEATS = 3.0
MIN_HEARTBEAT_S = 0.1
MAX_LEASE_AHEAD = 4  # leases a runner may hold queued beyond its slots, whatever it asks
# After a scheduler restart, runners get at least this long to re-register with their jobs.
RESTART_GRACE_MIN_S = 5.0


@dataclass
class Lease:
    """One attempt a runner holds. `confirmed`: the runner said it runs it (JobStarted, a
    heartbeat or its registration); `generation`: the stream the lease was sent on."""

    attempt: int
    batch_id: str
    generation: int
    confirmed: bool = False
    leased_at: float = field(default_factory=time.monotonic)

    def judged_by(self, session: RunnerSession, now: float) -> bool:
        """Whether a heartbeat that does not list this lease means the runner does not have it:
        the runner confirmed it before, it was sent on an older stream, or it is older than a TTL
        (a runner lists every lease it holds, queued ones too)."""
        return self.confirmed or self.generation < session.generation or now - self.leased_at > session.ttl


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
    token_id: str = ""  # with auth: the token the runner registered with
    lease_ahead: int = 0  # leases it may hold queued beyond capacity (Heartbeat.lease_ahead)

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
    def free(self) -> int:
        """Leases it can take now: free slots, then room in its lease-ahead queue."""
        if not self.connected or self.draining:
            return 0
        return max(0, self.capacity + self.lease_ahead - len(self.leases))

    @property
    def free_slots(self) -> int:
        """Leases it would start at once (a runner with free slots is preferred over one that queues)."""
        return min(self.free, max(0, self.capacity - len(self.leases)))

    def queues_only_behind(self, batch_id: str) -> bool:
        """Whether a lease of this batch held ahead here could only start when one of the batch's
        own jobs exits: every slot is taken and every lease it holds is of this batch. Such a lease
        may go beyond the batch's max_parallel_jobs (counted in leases), since it never raises the
        number of the batch's jobs that run at once."""
        return (self.free > 0 and self.free_slots == 0 and bool(self.leases)
                and all(lease.batch_id == batch_id for lease in self.leases.values()))

    def touch(self, now: float | None = None) -> None:
        """The runner spoke: its leases live another TTL."""
        self.last_seen = time.monotonic() if now is None else now
        self.expires_at = self.last_seen + self.ttl

    def serves(self, engine: str, simulation_type: str) -> bool:
        """Whether this runner has the engine and lists the simulation type in its capabilities."""
        return engine in self.engines and simulation_type in self.simulation_types

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


class Sessions:
    """Every runner session, and what the runners' messages do to leases and attempts."""

    def __init__(self, store: Store, configs: Configs, wake: Callable[[], None],
                 note_due: Callable[[float], None]) -> None:
        self.store = store
        self.configs = configs
        self.settler = Settler(store)
        self.by_id: dict[str, RunnerSession] = {}
        self.closing = False
        self._wake = wake
        self._note_due = note_due

    def free(self) -> list[RunnerSession]:
        return [s for s in self.by_id.values() if s.free]

    def next_expiry(self) -> float | None:
        return min((s.expires_at for s in self.by_id.values()), default=None)

    # ---- attach and detach ------------------------------------------------------------------

    async def attach(self, reg: pb.RegisterRunner, principal: Principal | None = None) -> RunnerSession:
        """A runner registers: attach a new stream to its session (a reconnect keeps its leases)
        and reconcile the jobs it says it runs. Raises ValidationError on a bad registration, PermissionError
        for another runner's token, FileExistsError while another caller holds a live stream under this id."""
        if not reg.runner_id:
            raise ValidationError("register.runner_id", "is required")
        if principal is not None and principal.role == "runner" and principal.runner_id != reg.runner_id:
            log.warning("refused runner %r: its token belongs to runner %r", reg.runner_id, principal.runner_id)
            raise PermissionError(f"this token belongs to runner {principal.runner_id!r}; "
                                  f"it cannot register as {reg.runner_id!r}")
        token_id = principal.token_id if principal is not None else ""
        caps = reg.capabilities
        interval = reg.heartbeat_interval_secs or 2.0
        session = self.by_id.get(reg.runner_id)
        if session is not None and session.connected and (principal is None or session.token_id != token_id):
            log.warning("refused a second registration of runner %s while its stream is live", reg.runner_id)
            raise FileExistsError(f"runner {reg.runner_id!r} is already connected; a second runner cannot take "
                                  "over its id while that stream is live")
        if session is None:
            session = RunnerSession(reg.runner_id, frozenset(), frozenset(), 1, interval)
            self.by_id[reg.runner_id] = session
        else:  # a reconnect: end the old stream, keep the leases
            session.detach()
            session.outbox = asyncio.Queue()
            session.generation += 1
        session.engines = frozenset(reg.engines)
        session.simulation_types = frozenset(caps.supported_simulation_types)
        session.capacity = max(1, caps.max_concurrent_jobs)
        session.lease_ahead = 0  # until its next heartbeat says otherwise
        session.heartbeat_interval = interval
        session.draining = False
        session.token_id = token_id
        session.touch()
        self._reconcile_register(session, {r.job_id: r.attempt for r in reg.running_jobs})
        await self.store.upsert_runner(RunnerRow(
            reg.runner_id, reg.name or reg.runner_id, list(reg.engines), caps.SerializeToString(), True,
            time.time(), heartbeat_interval=interval,
        ))
        log.info("runner %s registered: engines=%s slots=%d running=%d", reg.runner_id, list(reg.engines),
                 session.capacity, len(reg.running_jobs))
        self._wake()
        return session

    async def detached(self, session: RunnerSession, outbox: asyncio.Queue) -> None:
        """A stream ended. Unless a reconnect superseded it, the runner is away (its leases live
        until its TTL passes)."""
        if session.outbox is outbox:
            session.detach()
            if not self.closing:
                try:
                    await self.store.set_runner_online(session.runner_id, False)
                except Exception:  # noqa: BLE001 - the store may be closing; the flag is cosmetic
                    log.debug("could not mark runner %s offline", session.runner_id)
        log.info("runner %s disconnected (its leases live until %.1f s after its last message)",
                 session.runner_id, session.ttl)

    def close(self) -> None:
        self.closing = True
        for session in self.by_id.values():
            session.detach()

    # ---- the runner's messages --------------------------------------------------------------

    async def receive(self, session: RunnerSession, outbox: asyncio.Queue,
                      messages: AsyncIterator[pb.ConnectRequest]) -> None:
        """Handle one stream's messages. Reports are settled concurrently (so reports of all
        runners share store transactions) and acked once committed; a heartbeat is reconciled
        only after every earlier report of the stream has been settled."""
        reports: set[asyncio.Task] = set()
        try:
            async for message in messages:
                if session.outbox is not outbox:
                    break  # superseded by a newer stream of the same runner
                session.touch()
                kind = message.WhichOneof("message")
                if kind in ("job_finished", "job_released"):
                    task = asyncio.create_task(self._report(session, outbox, getattr(message, kind)))
                    reports.add(task)
                    task.add_done_callback(reports.discard)
                elif kind == "heartbeat":
                    if reports:
                        await asyncio.gather(*reports, return_exceptions=True)
                    running = {r.job_id: r.attempt for r in message.heartbeat.running_jobs}
                    await self._reconcile_heartbeat(session, running)
                    lease_ahead = min(max(0, message.heartbeat.lease_ahead), MAX_LEASE_AHEAD)
                    if lease_ahead != session.lease_ahead:
                        session.lease_ahead = lease_ahead
                        self._wake()
                    await self.store.set_runner_online(session.runner_id, True, time.time())
                elif kind == "job_started":
                    lease = session.leases.get(message.job_started.job_id)
                    if lease is not None and lease.attempt == message.job_started.attempt:
                        lease.confirmed = True
                    else:
                        log.warning("runner %s says it started job %s attempt %d, which is not its lease; ignored",
                                    session.runner_id, message.job_started.job_id, message.job_started.attempt)
                elif kind == "draining":
                    session.draining = True
                    log.info("runner %s is draining (grace %.1f s)", session.runner_id,
                             message.draining.grace_seconds)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            outbox.put_nowait(None)

    async def _report(self, session: RunnerSession, outbox: asyncio.Queue, report) -> None:
        """Settle a JobFinished or JobReleased and queue its ack."""
        try:
            if isinstance(report, pb.JobFinished):
                record, kind = finished_report(report, session.runner_id), policy.FINISHED
            else:  # a draining runner hands a job back: requeued without charging its retry budget
                record = Report("released", reason="released", error_message=report.reason or None)
                kind = policy.RELEASED
            ack = await self._settle_report(session, report.job_id, report.attempt, kind, record)
        except Exception:  # noqa: BLE001 - no ack: the runner resends after reconnecting
            log.exception("report of job %s attempt %d failed", report.job_id, report.attempt)
            return
        outbox.put_nowait(ack)

    async def _settle_report(self, session: RunnerSession, job_id: str, attempt: int, kind: str,
                             record: Report) -> pb.ConnectResponse:
        lease = session.leases.get(job_id)
        if lease is not None and lease.attempt != attempt:
            lease = None
        settled = await self.end_attempt(session.runner_id, job_id, attempt, kind, record,
                                         batch_id=lease.batch_id if lease else None)
        if lease is not None and settled.verdict != "unknown":
            session.leases.pop(job_id, None)
        accepted = settled.verdict in ("accepted", "duplicate")
        if not accepted:
            log.warning("ignored %s report of job %s attempt %d from %s (%s)",
                        kind, job_id, attempt, session.runner_id, settled.verdict)
        self._wake()
        return pb.ConnectResponse(ack=pb.ReportAck(job_id=job_id, attempt=attempt, accepted=accepted))

    # ---- reconciliation ---------------------------------------------------------------------

    def _reconcile_register(self, session: RunnerSession, running: dict[str, int]) -> None:
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

    async def _reconcile_heartbeat(self, session: RunnerSession, running: dict[str, int]) -> None:
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
            await self._lose(session.runner_id, job_id, lease)
            self._wake()

    def _cancel_stale(self, session: RunnerSession, job_id: str, attempt: int) -> None:
        log.warning("runner %s runs job %s attempt %d, which is not its lease; cancelling it",
                    session.runner_id, job_id, attempt)
        session.send(pb.ConnectResponse(
            cancel=pb.CancelJob(job_id=job_id, reason=f"attempt {attempt} is no longer leased to this runner")
        ))

    # ---- leases -----------------------------------------------------------------------------

    async def grant(self, session: RunnerSession, lease: pb.JobLease) -> bool:
        """Send a written lease; if its runner's stream went away meanwhile, hand the job back."""
        held = Lease(lease.attempt, lease.batch_id, session.generation)
        session.leases[lease.job_id] = held
        if session.send(pb.ConnectResponse(lease=lease)):
            log.debug("leased job %s (attempt %d) to %s", lease.job_id, lease.attempt, session.runner_id)
            return True
        session.leases.pop(lease.job_id, None)
        await self.end_attempt(None, lease.job_id, lease.attempt, policy.RELEASED, Report(
            "released", reason="released", error_message="runner disconnected before the lease was sent",
            reported=False), batch_id=lease.batch_id)
        self._wake()
        return False

    async def adopt_running(self) -> int:
        """At start-up: every running job stays leased to its runner for a grace window
        (max(lease TTL, RESTART_GRACE_MIN_S)); a runner that re-registers with it keeps it,
        otherwise it is requeued as a runner loss when the window closes."""
        runners = {r.runner_id: r for r in await self.store.list_runners()}
        leases = await self.store.running_leases()
        now = time.monotonic()
        for job_id, attempt, runner_id, batch_id in leases:
            session = self.by_id.get(runner_id)
            if session is None:
                row = runners.get(runner_id)
                interval = row.heartbeat_interval if row else 2.0
                session = RunnerSession(runner_id, frozenset(), frozenset(), 0, interval, outbox=None)
                session.expires_at = now + max(session.ttl, RESTART_GRACE_MIN_S)
                self.by_id[runner_id] = session
            session.leases[job_id] = Lease(attempt, batch_id, generation=0, confirmed=True)
        return len(leases)

    async def expire_silent(self) -> None:
        """Drop every runner silent past its lease TTL: its leases are lost."""
        now = time.monotonic()
        for session in list(self.by_id.values()):
            if now > session.expires_at:
                log.warning("runner %s silent past its lease TTL (%.1f s); %d leases lost",
                            session.runner_id, session.ttl, len(session.leases))
                await self._drop(session)

    async def _drop(self, session: RunnerSession) -> None:
        if self.by_id.get(session.runner_id) is session:
            del self.by_id[session.runner_id]
        session.detach()
        if self.closing:  # shutting down: the store may be closed; a restart reconciles
            return
        leases, session.leases = dict(session.leases), {}
        for job_id, lease in leases.items():
            await self._lose(session.runner_id, job_id, lease)
        await self.store.set_runner_online(session.runner_id, False)
        self._wake()

    async def _lose(self, runner_id: str, job_id: str, lease: Lease) -> Settled:
        return await self.end_attempt(runner_id, job_id, lease.attempt, policy.LOST,
                                      Report("runner_lost", reported=False), batch_id=lease.batch_id)

    # ---- ending attempts --------------------------------------------------------------------

    async def end_attempt(self, runner_id: str | None, job_id: str, attempt: int, kind: str, report: Report,
                          batch_id: str | None = None) -> Settled:
        """Settle one attempt and act on the outcome (abort the batch when its failure budget
        is exceeded). `runner_id` None means the scheduler ends it itself."""
        if batch_id is None:
            job = await self.store.get_job(job_id)
            if job is None:
                return Settled("unknown")
            batch_id = job.batch_id
        settled = await self.settler.settle(
            Ending(job_id, attempt, runner_id, kind, report, await self.configs.policy(batch_id))
        )
        if settled.verdict == "accepted":
            log.debug("job %s attempt %d %s -> %s", job_id, attempt, kind, settled.status)
            if settled.status == policy.PENDING and settled.job is not None:
                self._note_due(settled.job.not_before)
            if settled.aborted_now:
                log.warning("batch %s exceeded its failure budget; aborting", batch_id)
                await self.kill_running(batch_id, "batch aborted: failure budget exceeded")
        return settled

    async def kill_running(self, batch_id: str, reason: str) -> int:
        """Stop a batch's running jobs: CancelJob to runners that hold them on a live stream;
        jobs whose runner is away are cancelled here (a runner that comes back is told to kill them)."""
        killed = 0
        for job in await self.store.batch_jobs(batch_id, (policy.RUNNING,)):
            session = self.by_id.get(job.runner_id or "")
            lease = session.leases.get(job.job_id) if session else None
            if session and lease and lease.attempt == job.attempts and session.send(
                pb.ConnectResponse(cancel=pb.CancelJob(job_id=job.job_id, reason=reason))
            ):
                killed += 1
                continue
            if session and lease:
                session.leases.pop(job.job_id, None)
            settled = await self.end_attempt(
                None, job.job_id, job.attempts, policy.CANCELLED_KIND,
                Report("cancelled", reason="cancelled", reported=False), batch_id=batch_id,
            )
            killed += settled.verdict == "accepted"
        self._wake()
        return killed

    def routing_message(self, batch: BatchRow) -> str:
        """Why a batch with pending jobs is waiting, when no connected runner can serve it."""
        if batch.cancelled or batch.aborted or not batch.counts.get(policy.PENDING):
            return ""
        live = [s for s in self.by_id.values() if s.connected and not s.draining]
        if any(s.serves(batch.engine, batch.sim_type) for s in live):
            return ""
        return f"no connected runner serves simulation type {batch.sim_type!r} (engine {batch.engine!r})"

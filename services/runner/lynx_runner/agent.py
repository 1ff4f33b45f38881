"""The runner's link to the scheduler: register, heartbeat, take leases, report results, drain."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import deque

import grpc

from lynx.artifacts.v1 import artifact_service_pb2_grpc as apb_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_common import limits, security
from lynx_common.server import CLIENT_OPTIONS, client_channel
from lynx_runner.artifacts import ResultCompleter
from lynx_runner.config import RunnerConfig
from lynx_runner.engine import Engine, JobHandle, Slot
from lynx_runner.engines import build_engines
from lynx_runner.host import host_capabilities
from lynx_runner.orphans import JobRecords, records_dir, start_guardian, stop_guardian
from lynx_runner.streams import bound_result

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 10.0
DEFAULT_DRAIN_GRACE_S = 30.0
ACK_WAIT_S = 5.0  # how long a draining runner waits for its last reports to be acknowledged
DRAIN_REASON = "runner draining"
LEASE_AHEAD_WINDOW = 8  # jobs whose run time decides whether the runner leases ahead
# Reconnect quickly after a scheduler restart (gRPC's own default backoff grows to 120 s).
_SCHEDULER_OPTIONS = [
    *CLIENT_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def _launch_error(lease: pb.JobLease, message: str) -> pb.JobResult:
    """A failed result for an attempt that never ran its scenario."""
    return pb.JobResult(job_id=lease.job_id, attempt=lease.attempt, success=False,
                        termination_reason=pb.TERMINATION_REASON_LAUNCH_ERROR, error_message=message)


class RunnerAgent:
    """Holds one Connect stream at a time, reconnecting with backoff until stopped.

    Delivery: a job's final report (JobFinished or JobReleased) is kept until the scheduler acks it
    (ReportAck, sent after its store committed). After a reconnect the runner registers with the
    jobs it still runs and resends every unacknowledged report; the scheduler treats a resend
    idempotently.
    """

    def __init__(
        self, config: RunnerConfig, runner_id: str, name: str, scheduler_addr: str, telemetry_addr: str,
        drain_grace: float = DEFAULT_DRAIN_GRACE_S,
    ):
        self.config = config
        self.runner_id = runner_id
        self.name = name
        self.scheduler_addr = scheduler_addr
        self.drain_grace = drain_grace
        self.telemetry_channel = client_channel(telemetry_addr)
        self.engines: dict[str, Engine] = build_engines(
            config, runner_id, tel_grpc.TelemetryServiceStub(self.telemetry_channel)
        )
        self.artifact_channel = client_channel(scheduler_addr)  # uploads: ArtifactService on the scheduler's port
        self.completer = ResultCompleter(
            apb_grpc.ArtifactServiceStub(self.artifact_channel), runner_id, config.output_root,
            config.upload_artifacts, config.artifact_upload_limit,
        )
        self.jobs: dict[str, tuple[JobHandle, asyncio.Task]] = {}  # leased to it: running or queued for a slot
        self.slots = asyncio.Semaphore(config.max_concurrent_jobs)
        self.run_times: deque[float] = deque(maxlen=LEASE_AHEAD_WINDOW)
        self.unacked: dict[tuple[str, int], pb.ConnectRequest] = {}  # final reports awaiting ReportAck
        self.outbox: asyncio.Queue[pb.ConnectRequest] | None = None  # the live stream's, if any
        self.draining = False
        self._released: set[str] = set()  # jobs cancelled by the drain: reported as JobReleased
        self._closing = False

    # ---- lifetime ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, drain: asyncio.Event | None = None) -> None:
        """Stay connected until `stop` is set (running jobs are killed), or until `drain` is set
        and the drain ends (see drain()); a `stop` during the drain cuts it short."""
        records = records_dir(self.config.output_root, self.runner_id)
        if left := JobRecords(records).kill_leftovers():
            log.warning("killed %d jobs a previous runner %s left running", left, self.runner_id)
        guardian = start_guardian(records)  # kills the recorded jobs if this process dies, however it dies
        try:
            await self._run(stop, drain)
        finally:
            await asyncio.to_thread(stop_guardian, guardian)

    async def _run(self, stop: asyncio.Event, drain: asyncio.Event | None) -> None:
        for engine in self.engines.values():
            await engine.start()
        connection = asyncio.create_task(self._stay_connected(), name="scheduler-connection")
        try:
            waiters = [asyncio.create_task(stop.wait())]
            if drain is not None:
                waiters.append(asyncio.create_task(drain.wait()))
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
            if not stop.is_set():
                await self.drain(stop)
        finally:
            self._closing = True  # no job starts from here on
            for _handle, task in list(self.jobs.values()):
                task.cancel()  # the engine kills the scenario's process group
            await asyncio.gather(*(t for _, t in self.jobs.values()), return_exceptions=True)
            connection.cancel()
            await asyncio.gather(connection, return_exceptions=True)
            for engine in self.engines.values():
                await engine.close()
            await self.telemetry_channel.close()
            await self.artifact_channel.close()

    async def drain(self, stop: asyncio.Event) -> None:
        """Take no more leases, let running jobs finish within drain_grace seconds, cancel the rest
        and hand them back (JobReleased), then wait up to ACK_WAIT_S for the acks."""
        self.draining = True
        log.info("draining: %d jobs running, grace %.1f s", len(self.jobs), self.drain_grace)
        self._send(pb.ConnectRequest(draining=pb.Draining(grace_seconds=self.drain_grace)))
        for job_id, (handle, _task) in list(self.jobs.items()):
            if handle.slot is None or not handle.slot.started_at:  # queued, never started: handed back at once
                self._released.add(job_id)
                handle.cancel(DRAIN_REASON)
        await self._wait_until(lambda: not self.jobs, self.drain_grace, stop)
        if self.jobs and not stop.is_set():
            log.warning("drain grace over: handing back %d jobs", len(self.jobs))
            for job_id, (handle, _task) in list(self.jobs.items()):
                self._released.add(job_id)
                handle.cancel(DRAIN_REASON)
            await self._wait_until(lambda: not self.jobs, 10.0, stop)
        await self._wait_until(lambda: not self.unacked, ACK_WAIT_S, stop)
        if self.unacked:
            log.warning("exiting with %d reports the scheduler has not acknowledged", len(self.unacked))

    async def _wait_until(self, done, timeout: float, stop: asyncio.Event) -> None:
        """Poll `done()` until it holds, `timeout` passes or `stop` is set."""
        deadline = time.monotonic() + timeout
        while not done() and not stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _stay_connected(self) -> None:
        """One session after another, with exponential backoff between failures."""
        backoff = 0.5
        while True:
            try:
                await self._session()
                backoff = 0.5
            except grpc.aio.AioRpcError as exc:
                log.warning("scheduler %s: %s; retrying in %.1f s", self.scheduler_addr, exc.code().name, backoff)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep trying whatever one session did
                log.error("session failed: %r", exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    # ---- the stream -------------------------------------------------------------------------

    def _running(self) -> list[pb.RunningJob]:
        return [pb.RunningJob(job_id=j, attempt=h.lease.attempt) for j, (h, _t) in self.jobs.items()]

    def _register_message(self) -> pb.ConnectRequest:
        return pb.ConnectRequest(
            register=pb.RegisterRunner(
                runner_id=self.runner_id,
                name=self.name,
                engines=list(self.config.engines),
                capabilities=host_capabilities(self.config),
                heartbeat_interval_secs=self.config.heartbeat_interval_secs,
                running_jobs=self._running(),
            )
        )

    async def _requests(self, outbox: asyncio.Queue):
        """Register (built when gRPC sends it, so its job list is current), then Draining if
        draining, then the unacknowledged reports, then a heartbeat if it leases ahead, then whatever
        the agent queues."""
        yield self._register_message()
        if self.draining:
            yield pb.ConnectRequest(draining=pb.Draining(grace_seconds=self.drain_grace))
        resend = list(self.unacked.values())
        self.outbox = outbox  # from here on new reports go straight to this stream
        if resend:
            log.info("resending %d unacknowledged reports", len(resend))
        for message in resend:
            yield message
        if self.lease_ahead:  # a heartbeat: only after the resent reports (it judges leases it does not list)
            yield self._heartbeat_message()
        while True:
            yield await outbox.get()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval_secs)
            self._send(self._heartbeat_message())

    def _heartbeat_message(self) -> pb.ConnectRequest:
        return pb.ConnectRequest(heartbeat=pb.Heartbeat(running_jobs=self._running(), lease_ahead=self.lease_ahead))

    @property
    def lease_ahead(self) -> int:
        """1 while the runner's recent jobs (the median of the last LEASE_AHEAD_WINDOW) ran shorter than
        lease_ahead_below_seconds: for short jobs, the upload, report and next lease after each job
        would otherwise leave its slot idle. Long jobs gain nothing and a queued lease could wait
        behind one for that long, so they get none; nor does a draining runner."""
        limit = self.config.lease_ahead_below_seconds
        if self.draining or limit <= 0 or not self.run_times:
            return 0
        return int(statistics.median(self.run_times) < limit)

    async def _session(self) -> None:
        outbox: asyncio.Queue[pb.ConnectRequest] = asyncio.Queue()
        async with security.client_channel(self.scheduler_addr, _SCHEDULER_OPTIONS) as channel:
            stub = pb_grpc.SchedulerServiceStub(channel)
            call = stub.Connect(self._requests(outbox), wait_for_ready=True)
            heartbeats = asyncio.create_task(self._heartbeats())
            try:
                async for message in call:
                    self._handle(message)
            finally:
                if self.outbox is outbox:
                    self.outbox = None
                heartbeats.cancel()
                call.cancel()

    def _handle(self, message: pb.ConnectResponse) -> None:
        kind = message.WhichOneof("message")
        if kind == "registered":
            log.info("registered with %s as %s (%d jobs running)", self.scheduler_addr, self.runner_id, len(self.jobs))
        elif kind == "lease":
            self._start(message.lease)
        elif kind == "cancel":
            entry = self.jobs.get(message.cancel.job_id)
            if entry:
                log.info("job %s: cancel (%s)", message.cancel.job_id, message.cancel.reason)
                entry[0].cancel(message.cancel.reason)
        elif kind == "ack":
            ack = message.ack
            self.unacked.pop((ack.job_id, ack.attempt), None)
            if not ack.accepted:
                log.warning("scheduler refused the report of job %s attempt %d (no longer its lease)",
                            ack.job_id, ack.attempt)

    def _send(self, message: pb.ConnectRequest) -> bool:
        """Queue a message on the live stream; False when disconnected."""
        if self.outbox is None:
            return False
        self.outbox.put_nowait(message)
        return True

    # ---- jobs -------------------------------------------------------------------------------

    def _start(self, lease: pb.JobLease) -> None:
        if self._closing:
            return
        existing = self.jobs.get(lease.job_id)
        if existing is not None:
            handle, task = existing
            if handle.lease.attempt >= lease.attempt:
                log.warning("job %s attempt %d already runs here; lease of attempt %d ignored",
                            lease.job_id, handle.lease.attempt, lease.attempt)
                return
            # An older attempt of the same job is still here (it was lost, then leased back to us):
            # stop it, then run the new attempt.
            handle.cancel(f"superseded by attempt {lease.attempt}")
            asyncio.create_task(self._start_when_done(task, lease), name=f"restart-{lease.job_id}")
            return
        if self.draining:
            self._report(pb.ConnectRequest(job_released=pb.JobReleased(
                job_id=lease.job_id, attempt=lease.attempt, reason=DRAIN_REASON)))
            return
        if lease.engine not in self.engines:
            message = f"engine {lease.engine!r} is not served by runner {self.runner_id}"
            self._finished(lease, _launch_error(lease, message))
            return
        handle = JobHandle(lease)
        task = asyncio.create_task(self._run_job(handle), name=f"job-{lease.job_id}")
        self.jobs[lease.job_id] = (handle, task)

    async def _start_when_done(self, task: asyncio.Task, lease: pb.JobLease) -> None:
        await asyncio.wait({task})
        self._start(lease)

    async def _run_job(self, handle: JobHandle) -> None:
        """Run the job (the engine holds one of the runner's slots only while its process runs: a
        lease held ahead waits for one), then collect and upload its outputs and report it."""
        lease = handle.lease
        slot = handle.slot = Slot(self.slots, on_start=lambda: self._job_started(lease))
        try:
            try:
                result = await self.engines[lease.engine].run(handle)
            finally:
                slot.release()
            if slot.started_at:
                self._ran(slot.ended_at - slot.started_at)
            if lease.job_id not in self._released:  # outputs and uploads while the job still counts as running
                await self.completer.complete(lease, result)
        except Exception as exc:  # noqa: BLE001 - a runner bug must still end the job
            log.exception("job %s crashed the engine", lease.job_id)
            result = _launch_error(lease, f"runner error: {exc!r}")
        finally:
            self.jobs.pop(lease.job_id, None)
        if lease.job_id in self._released:
            self._released.discard(lease.job_id)
            log.info("job %s attempt %d handed back (draining)", lease.job_id, lease.attempt)
            self._report(pb.ConnectRequest(job_released=pb.JobReleased(
                job_id=lease.job_id, attempt=lease.attempt, reason=DRAIN_REASON)))
            return
        log.info("job %s attempt %d finished: success=%s %s", lease.job_id, lease.attempt,
                 result.success, result.error_message.splitlines()[0] if result.error_message else "")
        self._finished(lease, result)

    def _job_started(self, lease: pb.JobLease) -> None:
        self._send(pb.ConnectRequest(job_started=pb.JobStarted(job_id=lease.job_id, attempt=lease.attempt)))

    def _ran(self, seconds: float) -> None:
        """Note a job's run time; tell the scheduler at once when that changes lease_ahead."""
        before = self.lease_ahead
        self.run_times.append(seconds)
        if self.lease_ahead != before:
            log.info("lease ahead: %d (median run time of the last %d jobs %.1f s)", self.lease_ahead,
                     len(self.run_times), statistics.median(self.run_times))
            self._send(self._heartbeat_message())

    def _finished(self, lease: pb.JobLease, result: pb.JobResult) -> None:
        self._report(pb.ConnectRequest(
            job_finished=pb.JobFinished(job_id=lease.job_id, attempt=lease.attempt,
                                        result=bound_result(result, limits.value("grpc_message_bytes")))))

    def _report(self, message: pb.ConnectRequest) -> None:
        """Keep a final report until acked, and send it now if connected."""
        report = message.job_finished if message.WhichOneof("message") == "job_finished" else message.job_released
        self.unacked[(report.job_id, report.attempt)] = message
        self._send(message)

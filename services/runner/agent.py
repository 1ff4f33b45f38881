"""The runner's link to the scheduler: register, heartbeat, take leases, report results."""

from __future__ import annotations

import asyncio
import logging

import grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_common.server import client_channel
from lynx_runner.config import RunnerConfig
from lynx_runner.engine import Engine, JobHandle, build_engines
from lynx_runner.host import host_capabilities

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 10.0


def _launch_error(lease: pb.JobLease, message: str) -> pb.JobResult:
    """A failed result for an attempt that never ran its scenario."""
    return pb.JobResult(job_id=lease.job_id, attempt=lease.attempt, success=False,
                        termination_reason="launch_error", error_message=message)


class RunnerAgent:
    """Holds one Connect stream at a time, reconnecting with backoff until stopped."""

    def __init__(self, config: RunnerConfig, runner_id: str, name: str, scheduler_addr: str, telemetry_addr: str):
        self.config = config
        self.runner_id = runner_id
        self.name = name
        self.scheduler_addr = scheduler_addr
        self.telemetry_channel = client_channel(telemetry_addr)
        self.engines: dict[str, Engine] = build_engines(
            config, runner_id, tel_grpc.TelemetryServiceStub(self.telemetry_channel)
        )
        self.jobs: dict[str, tuple[JobHandle, asyncio.Task]] = {}
        self.outbox: asyncio.Queue[pb.ConnectRequest] = asyncio.Queue()

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until `stop` is set, then kill running jobs and return."""
        backoff = 0.5
        for engine in self.engines.values():
            await engine.start()
        try:
            while not stop.is_set():
                session = asyncio.create_task(self._session())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({session, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if not session.done():
                    session.cancel()
                results = await asyncio.gather(session, return_exceptions=True)
                if stop.is_set():
                    break
                if isinstance(results[0], grpc.aio.AioRpcError):
                    log.warning("scheduler %s: %s; retrying in %.1f s",
                                self.scheduler_addr, results[0].code().name, backoff)
                elif isinstance(results[0], Exception):
                    log.error("session failed: %r", results[0])
                else:
                    backoff = 0.5
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            for _handle, task in list(self.jobs.values()):
                task.cancel()
            await asyncio.gather(*(t for _, t in self.jobs.values()), return_exceptions=True)
            for engine in self.engines.values():
                await engine.close()
            await self.telemetry_channel.close()

    def _register_message(self) -> pb.ConnectRequest:
        return pb.ConnectRequest(
            register=pb.RegisterRunner(
                runner_id=self.runner_id,
                name=self.name,
                engines=list(self.config.engines),
                capabilities=host_capabilities(self.config),
                heartbeat_interval_secs=self.config.heartbeat_interval_secs,
            )
        )

    async def _requests(self):
        yield self._register_message()
        while True:
            yield await self.outbox.get()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval_secs)
            self.outbox.put_nowait(pb.ConnectRequest(heartbeat=pb.Heartbeat(running_job_ids=list(self.jobs))))

    async def _session(self) -> None:
        async with client_channel(self.scheduler_addr) as channel:
            stub = pb_grpc.SchedulerServiceStub(channel)
            call = stub.Connect(self._requests(), wait_for_ready=True)
            heartbeats = asyncio.create_task(self._heartbeats())
            try:
                async for message in call:
                    kind = message.WhichOneof("message")
                    if kind == "registered":
                        log.info("registered with %s as %s", self.scheduler_addr, self.runner_id)
                    elif kind == "lease":
                        self._start(message.lease)
                    elif kind == "cancel":
                        entry = self.jobs.get(message.cancel.job_id)
                        if entry:
                            entry[0].cancel(message.cancel.reason)
            finally:
                heartbeats.cancel()
                call.cancel()

    def _start(self, lease: pb.JobLease) -> None:
        if lease.engine not in self.engines:
            message = f"engine {lease.engine!r} is not served by runner {self.runner_id}"
            self._report(lease, _launch_error(lease, message))
            return
        handle = JobHandle(lease)
        task = asyncio.create_task(self._run_job(handle), name=f"job-{lease.job_id}")
        self.jobs[lease.job_id] = (handle, task)

    async def _run_job(self, handle: JobHandle) -> None:
        lease = handle.lease
        self.outbox.put_nowait(pb.ConnectRequest(job_started=pb.JobStarted(job_id=lease.job_id, attempt=lease.attempt)))
        try:
            result = await self.engines[lease.engine].run(handle)
        except Exception as exc:  # noqa: BLE001 - a runner bug must still end the job
            log.exception("job %s crashed the engine", lease.job_id)
            result = _launch_error(lease, f"runner error: {exc!r}")
        finally:
            self.jobs.pop(lease.job_id, None)
        log.info("job %s attempt %d finished: success=%s %s", lease.job_id, lease.attempt,
                 result.success, result.error_message.splitlines()[0] if result.error_message else "")
        self._report(lease, result)

    def _report(self, lease: pb.JobLease, result: pb.JobResult) -> None:
        """Queue the attempt's final report for the scheduler."""
        self.outbox.put_nowait(
            pb.ConnectRequest(job_finished=pb.JobFinished(job_id=lease.job_id, attempt=lease.attempt, result=result))
        )

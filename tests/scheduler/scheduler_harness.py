"""In-process scheduler harness: real sampler and scheduler gRPC servers, fake runners that speak Connect.

Imported by name from the scheduler tests (pytest puts this directory on sys.path).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from lynx.artifacts.v1 import artifact_service_pb2_grpc as art_grpc
from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_common.names import JOB_STATUS, TERMINATION_REASON
from lynx_common.objectstore import open_store
from lynx_common.server import GrpcServer, client_channel
from lynx_gateway.convert import config_from_json
from lynx_sampler.server import build_server as build_sampler
from lynx_scheduler.artifacts import ArtifactServicer
from lynx_scheduler.dispatch import Dispatcher
from lynx_scheduler.server import SchedulerServicer
from lynx_scheduler.store import Store

TUTORIAL = json.loads((Path(__file__).parents[1] / "e2e" / "tutorial_body.json").read_text())


def tutorial_config(**compute) -> cfg.BatchConfig:
    config = config_from_json(TUTORIAL["config"])
    for key, value in compute.items():
        setattr(config.compute, key, value)
    return config


class FakeRunnerHost:
    """A test runner: speaks the real Connect protocol and lets the test decide each job's outcome."""

    def __init__(self, stub, runner_id: str, slots: int, types=("basilisk",)):
        self.stub = stub
        self.running: dict[str, int] = {}  # job_id -> attempt, listed in every heartbeat
        self.lease_ahead = 0  # Heartbeat.lease_ahead
        self.leases: asyncio.Queue = asyncio.Queue()
        self.cancels: asyncio.Queue = asyncio.Queue()
        self.acks: asyncio.Queue = asyncio.Queue()
        self.register = pb.RegisterRunner(
            runner_id=runner_id, name=runner_id, engines=["basilisk"], heartbeat_interval_secs=0.5,
            capabilities=pb.RunnerCapabilities(max_concurrent_jobs=slots, supported_simulation_types=list(types)),
        )
        self._connect()

    def _connect(self) -> None:
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.call = self.stub.Connect(self._requests())
        self.reader = asyncio.create_task(self._read())
        self.beats = asyncio.create_task(self._beat())

    async def reconnect(self, running: list[pb.JobLease] = ()) -> None:
        """Drop the stream and register again, listing `running` as still running."""
        await self.close()
        del self.register.running_jobs[:]
        self.register.running_jobs.extend(pb.RunningJob(job_id=lease.job_id, attempt=lease.attempt)
                                          for lease in running)
        self._connect()

    async def _beat(self):
        while True:
            await asyncio.sleep(0.25)
            running = [pb.RunningJob(job_id=j, attempt=a) for j, a in self.running.items()]
            self.outbox.put_nowait(pb.ConnectRequest(heartbeat=pb.Heartbeat(running_jobs=running,
                                                                            lease_ahead=self.lease_ahead)))

    async def _requests(self):
        yield pb.ConnectRequest(register=self.register)
        while True:
            yield await self.outbox.get()

    async def _read(self):
        async for message in self.call:
            kind = message.WhichOneof("message")
            if kind == "lease":
                self.running[message.lease.job_id] = message.lease.attempt
                await self.leases.put(message.lease)
            elif kind == "cancel":
                await self.cancels.put(message.cancel)
            elif kind == "ack":
                await self.acks.put(message.ack)

    def send(self, **message) -> None:
        self.outbox.put_nowait(pb.ConnectRequest(**message))

    async def next_cancel(self, timeout: float = 5.0) -> pb.CancelJob:
        return await asyncio.wait_for(self.cancels.get(), timeout)

    async def next_ack(self, timeout: float = 5.0) -> pb.ReportAck:
        return await asyncio.wait_for(self.acks.get(), timeout)

    async def next_lease(self, timeout: float = 5.0) -> pb.JobLease:
        return await asyncio.wait_for(self.leases.get(), timeout)

    async def no_lease(self, wait: float = 0.7) -> bool:
        await asyncio.sleep(wait)
        return self.leases.empty()

    def finish(self, lease: pb.JobLease, success: bool, reason: str = "exited", attempt: int | None = None):
        result = pb.JobResult(success=success, termination_reason=TERMINATION_REASON.value(reason),
                              exit_code=0 if success else 1)
        if not success:
            result.error_message = "boom"
        if self.running.get(lease.job_id) == (attempt or lease.attempt):
            del self.running[lease.job_id]
        self.outbox.put_nowait(pb.ConnectRequest(job_finished=pb.JobFinished(
            job_id=lease.job_id, attempt=attempt or lease.attempt, result=result)))

    async def close(self):
        self.call.cancel()
        self.reader.cancel()
        self.beats.cancel()
        await asyncio.gather(self.reader, self.beats, return_exceptions=True)


@asynccontextmanager
async def scheduler_at(data_dir: Path, artifact_store: str | None = None) -> AsyncIterator:
    """A scheduler on `data_dir` (its scheduler.db, adopting the jobs a previous one left running;
    artifacts under data_dir/artifacts unless `artifact_store` names a store), with a real sampler.
    Yields the SchedulerService stub with .artifacts (the ArtifactService stub), .objects (the
    store), .sampler_server and .runner(runner_id) (a fake runner speaking Connect)."""
    sampler = build_sampler()
    await sampler.start()
    store = await Store.open(data_dir / "scheduler.db")
    dispatcher = Dispatcher(store)
    dispatcher.start()
    await dispatcher.sessions.adopt_running()
    sampler_channel = client_channel(sampler.address)
    servicer = SchedulerServicer(store, dispatcher, sampler_grpc.SamplerServiceStub(sampler_channel), sampler_channel)
    objects = open_store(artifact_store or str(data_dir / "artifacts"))
    artifacts = ArtifactServicer(store, objects)

    def register(server) -> None:
        pb_grpc.add_SchedulerServiceServicer_to_server(servicer, server)
        art_grpc.add_ArtifactServiceServicer_to_server(artifacts, server)

    server = GrpcServer(register, ["lynx.scheduler.v1.SchedulerService", "lynx.artifacts.v1.ArtifactService"])
    await server.start()
    channel = client_channel(server.address)
    stub = pb_grpc.SchedulerServiceStub(channel)
    stub.artifacts = art_grpc.ArtifactServiceStub(channel)
    stub.address = server.address
    stub.objects = objects
    stub.sampler_server = sampler
    hosts: list[FakeRunnerHost] = []

    def runner(runner_id: str, slots: int = 1, types=("basilisk",)) -> FakeRunnerHost:
        host = FakeRunnerHost(stub, runner_id, slots, types)
        hosts.append(host)
        return host

    stub.runner = runner
    try:
        yield stub
    finally:
        for host in hosts:
            await host.close()
        await channel.close()
        await server.stop(0)
        await dispatcher.stop()
        await sampler_channel.close()
        await sampler.stop(0)
        await store.close()


@pytest.fixture
async def scheduler(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        yield stub


async def submit(stub, config: cfg.BatchConfig, runs: int = 5) -> str:
    reply = await stub.SubmitBatch(pb.SubmitBatchRequest(name="t", runs_override=runs, config=config), timeout=10)
    assert reply.total_jobs == runs
    return reply.batch_id


async def batch(stub, batch_id: str) -> pb.Batch:
    return (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), timeout=5)).batch




def job_counts(b: pb.Batch) -> dict[str, int]:
    """Batch.jobs_by_status as {"Pending": n, ...}."""
    return {JOB_STATUS.name(c.status): c.count for c in b.jobs_by_status}


def failures(b: pb.Batch) -> dict[str, int]:
    """Batch.failures_by_reason as {"exited": n, ...}."""
    return {TERMINATION_REASON.name(c.reason): c.count for c in b.failures_by_reason}

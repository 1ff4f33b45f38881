"""In-process scheduler for the results tests (imported by name): real sampler and scheduler gRPC
servers on port 0 and a real SQLite file, which a test can stop and start again on the same data dir."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "scheduler"))  # scheduler_harness: the fake runner

from scheduler_harness import FakeRunnerHost  # noqa: E402

from lynx.artifacts.v1 import artifact_service_pb2_grpc as art_grpc  # noqa: E402
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc  # noqa: E402
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc  # noqa: E402
from lynx_common.objectstore import open_store  # noqa: E402
from lynx_common.server import GrpcServer, client_channel  # noqa: E402
from lynx_sampler.server import build_server as build_sampler  # noqa: E402
from lynx_scheduler.artifacts import ArtifactServicer  # noqa: E402
from lynx_scheduler.dispatch import Dispatcher  # noqa: E402
from lynx_scheduler.server import SchedulerServicer  # noqa: E402
from lynx_scheduler.store import Store  # noqa: E402


@asynccontextmanager
async def scheduler_at(data_dir: Path, artifact_store: str | None = None) -> AsyncIterator:
    """A scheduler on `data_dir` (its scheduler.db; artifacts under data_dir/artifacts unless
    `artifact_store` names a store). Yields the SchedulerService stub with .artifacts (the
    ArtifactService stub) and .runner(runner_id) (a fake runner speaking Connect)."""
    sampler = build_sampler()
    await sampler.start()
    store = await Store.open(data_dir / "scheduler.db")
    dispatcher = Dispatcher(store)
    dispatcher.start()
    await dispatcher.sessions.adopt_running()
    sampler_channel = client_channel(sampler.address)
    servicer = SchedulerServicer(store, dispatcher, sampler_grpc.SamplerServiceStub(sampler_channel))
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
    hosts: list[FakeRunnerHost] = []

    def runner(runner_id: str, slots: int = 1) -> FakeRunnerHost:
        host = FakeRunnerHost(stub, runner_id, slots)
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

"""Shared fixtures of the runner tests."""

from __future__ import annotations

import grpc
import pytest

from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_common.server import GrpcServer
from lynx_telemetry.server import TelemetryServicer
from lynx_telemetry.store import TelemetryStore


@pytest.fixture
async def telemetry(tmp_path):
    """A real telemetry-ingest server; yields (stub, store)."""
    store = await TelemetryStore.open(tmp_path / "telemetry.db")
    server = GrpcServer(
        lambda s: tel_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(store), s),
        [tel_pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name],
    )
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield tel_grpc.TelemetryServiceStub(channel), store
    finally:
        await channel.close()
        await server.stop(0)
        await store.close()

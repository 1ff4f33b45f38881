"""telemetry-ingest takes at most publish_samples_per_second of one job; others are unaffected."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_common.server import GrpcServer, client_channel
from lynx_telemetry.server import TelemetryServicer
from lynx_telemetry.store import TelemetryStore


def _requests(job_id: str, count: int, per_request: int = 100) -> list[pb.PublishRequest]:
    return [pb.PublishRequest(job_id=job_id, batch_id="b", samples=[
        pb.TelemetrySample(timestamp_ns=i * per_request + k, values={"x": 1.0}) for k in range(per_request)])
        for i in range(count // per_request)]


async def test_a_flood_for_one_job_is_refused_naming_the_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("LYNX_LIMIT_PUBLISH_SAMPLES_PER_SECOND", "1000")
    store = await TelemetryStore.open(tmp_path / "telemetry.db")
    server = GrpcServer(lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(store), s),
                        ["lynx.telemetry.v1.TelemetryService"])
    await server.start()
    channel = client_channel(server.address)
    stub = pb_grpc.TelemetryServiceStub(channel)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Publish(iter(_requests("flood", 10_000)), timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "LYNX_LIMIT_PUBLISH_SAMPLES_PER_SECOND" in err.value.details()
        reply = await stub.Publish(iter(_requests("quiet", 500)), timeout=10)  # another job is unaffected
        assert reply.accepted_samples == 500
        await asyncio.sleep(2.5)  # the flooding job's bucket refills: it may publish again
        assert (await stub.Publish(iter(_requests("flood", 500)), timeout=10)).accepted_samples == 500
    finally:
        await channel.close()
        await server.stop(0)
        await store.close()

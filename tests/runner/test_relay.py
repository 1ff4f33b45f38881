"""The runner's telemetry relay: selection, downsampling, and riding out an ingest outage."""

from __future__ import annotations

import pytest
from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_cli.stack import free_port
from lynx_common.server import GrpcServer, client_channel
from lynx_runner.relay import TelemetryRelay
from lynx_telemetry.server import TelemetryServicer
from lynx_telemetry.store import TelemetryStore


async def start_ingest(db_path, port: int = 0) -> tuple[GrpcServer, TelemetryStore]:
    store = await TelemetryStore.open(db_path)
    server = GrpcServer(
        lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(store), s),
        ["lynx.telemetry.v1.TelemetryService"],
        port=port,
    )
    await server.start()
    return server, store


def sample(t_s: float, **values: float) -> pb.TelemetrySample:
    return pb.TelemetrySample(timestamp_ns=int(t_s * 1e9), values=values)


@pytest.fixture
async def ingest(tmp_path):
    server, store = await start_ingest(tmp_path / "telemetry.db")
    channel = client_channel(server.address)
    yield pb_grpc.TelemetryServiceStub(channel), store
    await channel.close()
    await server.stop(0)
    await store.close()


async def test_variables_filter_and_sampling_rate_downsample_what_is_stored(ingest):
    stub, store = ingest
    spec = cfg.TelemetryConfig(variables=["a"], sampling_rate_hz=0.1)  # at most one sample per 10 s
    relay = TelemetryRelay(stub, "job-1", "batch-1", spec)
    for t in range(0, 60, 5):  # a sample every 5 s of sample time
        relay.add(sample(t, a=float(t), b=-1.0))
    relay.add(sample(61, b=3.0))  # only unselected variables: nothing to store
    await relay.flush()
    series = await store.query("job-1", [], None, None, 0)
    assert list(series) == ["a"]
    times, values = series["a"]
    assert [t / 1e9 for t in times] == [0, 10, 20, 30, 40, 50]
    assert values == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert relay.received == 13 and relay.stored == 6


async def test_samples_are_kept_through_an_ingest_outage_and_delivered_after(tmp_path):
    port = free_port()
    channel = client_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.TelemetryServiceStub(channel)
    relay = TelemetryRelay(stub, "job-2", "batch-1", cfg.TelemetryConfig())
    for t in range(100):
        relay.add(sample(t, x=float(t)))
    await relay.flush(deadline_s=0.5)  # nobody listens: nothing lost, nothing raised
    assert relay.stored == 0
    server, store = await start_ingest(tmp_path / "telemetry.db", port)
    try:
        relay.add(sample(100, x=100.0))
        await relay.flush()
        times, values = (await store.query("job-2", ["x"], None, None, 0))["x"]
        assert values == [float(t) for t in range(101)]
        assert relay.stored == 101
    finally:
        await channel.close()
        await server.stop(0)
        await store.close()

"""The runner's telemetry relay: selection, downsampling, and riding out an ingest outage.

Real telemetry-ingest servers (index and segments in tmp_path) on 127.0.0.1; the outage
is a real server stopped and restarted on the same port.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_cli.stack import free_port
from lynx_common.server import GrpcServer, client_channel
from lynx_runner.relay import CHUNK, TelemetryRelay
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


async def test_the_filter_and_downsampling_apply_to_columnar_blocks_too(ingest):
    stub, store = ingest
    relay = TelemetryRelay(stub, "job-1b", "batch-1", cfg.TelemetryConfig(variables=["a"], sampling_rate_hz=0.1))
    times = range(0, 60, 5)
    block = pb.SampleBlock(variables=["b", "a"], timestamps_ns=[t * 10**9 for t in times],
                           values=[v for t in times for v in (-1.0, float(t))])
    relay.add_request(pb.PublishRequest(blocks=[block]))
    await relay.flush()
    series = await store.query("job-1b", [], None, None, 0)
    assert series == {"a": ([t * 10**9 for t in range(0, 60, 10)], [float(t) for t in range(0, 60, 10)])}
    assert relay.stage_counts(client_dropped=0)["telemetry_filtered"] == "6"


@pytest.mark.parametrize("spec", [
    cfg.TelemetryConfig(variables=["a", "c"], sampling_rate_hz=0.5),
    cfg.TelemetryConfig(variables=["a", "b", "c"]),
    cfg.TelemetryConfig(sampling_rate_hz=0.25),
], ids=["filter+rate", "filter", "rate"])
async def test_blocks_are_selected_as_the_same_rows_sent_one_by_one_would_be(ingest, spec):
    """Blocks stay columnar in the relay; what is stored equals what the same rows, sent as single
    samples in the same order, store: downsampling runs on across blocks and requests, and a block
    without a chosen variable neither stores nor counts as kept."""
    import random

    stub, store = ingest
    rng = random.Random(7)
    requests, t = [], 0
    for _ in range(40):
        request = pb.PublishRequest()
        for _ in range(rng.randrange(3)):
            t += rng.randrange(1, 3) * 10**9
            request.samples.append(pb.TelemetrySample(timestamp_ns=t, values={"a": t / 1e9, "z": 1.0}))
        for _ in range(rng.randrange(3)):
            names = rng.choice([["a", "b"], ["b", "c", "a"], ["z"], ["c"]])
            stamps = []
            for _ in range(rng.randrange(0, 6)):
                t += rng.randrange(1, 3) * 10**9
                stamps.append(t)
            request.blocks.append(pb.SampleBlock(variables=names, timestamps_ns=stamps,
                                                 values=[ts / 1e9 + k for ts in stamps for k in range(len(names))]))
        requests.append(request)
    columnar = TelemetryRelay(stub, "job-col", "batch-1", spec)
    one_by_one = TelemetryRelay(stub, "job-one", "batch-1", spec)
    for request in requests:
        for s in request.samples:
            one_by_one.add(s)
        for block in request.blocks:
            width = len(block.variables)
            for i, ts in enumerate(block.timestamps_ns):
                one_by_one.add(pb.TelemetrySample(timestamp_ns=ts, values=dict(
                    zip(block.variables, block.values[i * width:(i + 1) * width], strict=True))))
        copy = pb.PublishRequest()
        copy.CopyFrom(request)
        columnar.add_request(copy)
    assert await columnar.flush() and await one_by_one.flush()
    expected = await store.query("job-one", [], None, None, 0)
    assert expected and await store.query("job-col", [], None, None, 0) == expected
    assert columnar.stage_counts(0) == one_by_one.stage_counts(0)
    assert columnar.received == one_by_one.received > columnar.stored > 0


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


async def stored_times(store: TelemetryStore, job_id: str, variable: str = "x") -> list[int]:
    series = await store.query(job_id, [variable], None, None, 0)
    return series[variable][0] if variable in series else []


def feed(relay: TelemetryRelay, times: range, how: str) -> None:
    """Give the relay samples one by one, or as the endpoint does: whole requests of 300."""
    if how == "samples":
        for t in times:
            relay.add(sample(t, x=float(t)))
        return
    for i in range(0, len(times), 300):
        part = times[i : i + 300]
        if how == "blocks":  # what the Python client sends: columnar SampleBlocks
            block = pb.SampleBlock(variables=["x"], timestamps_ns=[int(t * 1e9) for t in part],
                                   values=[float(t) for t in part])
            relay.add_request(pb.PublishRequest(blocks=[block]))
        else:
            relay.add_request(pb.PublishRequest(samples=[sample(t, x=float(t)) for t in part]))


@pytest.mark.parametrize("how", ["samples", "requests", "blocks"])
async def test_an_outage_is_buffered_up_to_the_cap_and_delivered_after_a_restart_on_the_same_port(tmp_path, how):
    port = free_port()
    server, store = await start_ingest(tmp_path / "telemetry.db", port)
    channel = client_channel(f"127.0.0.1:{port}")
    relay = TelemetryRelay(pb_grpc.TelemetryServiceStub(channel), "job-3", "batch-1", cfg.TelemetryConfig(),
                           max_buffered=1_000)
    try:
        feed(relay, range(300), how)
        assert await relay.flush() is True
        await server.stop(0)  # ingest goes away mid-job (SIGTERM: it writes its tails as segments)
        await store.close()
        feed(relay, range(300, 1_800), how)  # the scenario keeps publishing: 1,500 more, the buffer holds 1,000
        start = time.monotonic()
        assert await relay.flush(deadline_s=0.3) is False  # no exception, bounded wait
        assert time.monotonic() - start < 2.0
        assert (relay.buffered, relay.dropped, relay.stored) == (1_000, 500, 300)
        server, store2 = await start_ingest(tmp_path / "telemetry.db", port)
        assert await relay.flush() is True
        times = await stored_times(store2, "job-3")
        # everything before the outage, then the newest 1,000 (the oldest 500 of the outage were dropped)
        assert [t // 10**9 for t in times] == [*range(300), *range(800, 1_800)]
        assert (relay.stored, relay.dropped, relay.buffered) == (1_300, 500, 0)
    finally:
        await channel.close()
        await server.stop(0)
        await store2.close()


async def test_periodic_flush_ships_every_flush_interval(ingest):
    stub, store = ingest
    relay = TelemetryRelay(stub, "job-4", "batch-1", cfg.TelemetryConfig(buffer_flush_interval_seconds=0.1))
    flusher = asyncio.create_task(relay.run_periodic())
    try:
        relay.add_all(sample(t, x=float(t)) for t in range(5))
        deadline = time.monotonic() + 3.0
        while len(await stored_times(store, "job-4")) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(await stored_times(store, "job-4")) == 5
    finally:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)


async def test_a_flush_cancelled_during_an_outage_loses_nothing(tmp_path):
    """The engine cancels the periodic flusher at the end of a job, then flushes once more."""
    port = free_port()
    channel = client_channel(f"127.0.0.1:{port}")
    relay = TelemetryRelay(pb_grpc.TelemetryServiceStub(channel), "job-5", "b", cfg.TelemetryConfig())
    relay.add_all(sample(t, x=float(t)) for t in range(CHUNK + 10))  # more than one Publish call
    flushing = asyncio.create_task(relay.flush(deadline_s=30))
    await asyncio.sleep(0.3)  # waiting for an ingest that is not there
    flushing.cancel()
    await asyncio.gather(flushing, return_exceptions=True)
    assert relay.buffered == CHUNK + 10
    server, store = await start_ingest(tmp_path / "telemetry.db", port)
    try:
        assert await relay.flush(deadline_s=5) is True
        assert len(await stored_times(store, "job-5")) == CHUNK + 10
    finally:
        await channel.close()
        await server.stop(0)
        await store.close()


async def test_downsampling_follows_sample_time_not_arrival(ingest):
    stub, store = ingest
    relay = TelemetryRelay(stub, "job-6", "b", cfg.TelemetryConfig(sampling_rate_hz=2))  # >= 0.5 s apart
    for t in (0.0, 0.1, 0.49, 0.5, 0.7, 1.2, 1.25, 1.7, 3.0):
        relay.add(sample(t, x=t))
    await relay.flush()
    assert [t / 1e9 for t in await stored_times(store, "job-6")] == [0.0, 0.5, 1.2, 1.7, 3.0]
    assert (relay.received, relay.selected) == (9, 5)


async def test_a_half_full_buffer_is_shipped_before_the_flush_interval(ingest):
    stub, store = ingest
    relay = TelemetryRelay(stub, "job-7", "b", cfg.TelemetryConfig(buffer_flush_interval_seconds=600),
                           max_buffered=100)
    flusher = asyncio.create_task(relay.run_periodic())
    try:
        relay.add_all(sample(t, x=float(t)) for t in range(10))
        await asyncio.sleep(0.3)
        assert await stored_times(store, "job-7") == []  # a few samples wait for the interval
        relay.add_all(sample(t, x=float(t)) for t in range(10, 60))  # past half of the cap
        deadline = time.monotonic() + 3.0
        while len(await stored_times(store, "job-7")) < 60 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(await stored_times(store, "job-7")) == 60
        assert relay.dropped == 0
    finally:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)


async def test_messages_ingest_refuses_are_dropped_and_counted_not_retried_forever(ingest):
    stub, store = ingest
    spec = cfg.TelemetryConfig(storage=cfg.TelemetryStorage(compression="lzma"))  # a batch the scheduler refuses
    relay = TelemetryRelay(stub, "job-9", "batch-1", spec)
    relay.add_all(sample(t, x=1.0) for t in range(10))
    assert await relay.flush(deadline_s=5) is True  # not stuck: the buffer is empty
    assert (relay.stored, relay.dropped, relay.buffered, relay.lost) == (0, 10, 0, 10)

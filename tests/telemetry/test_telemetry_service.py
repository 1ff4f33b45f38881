"""Contract of telemetry-ingest over real gRPC: Publish, Query, Subscribe, Export, validation, persistence."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import math
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_common.server import GrpcServer, client_channel
from lynx_common.status import field_violations
from lynx_telemetry.hub import Hub
from lynx_telemetry.server import TelemetryServicer
from lynx_telemetry.store import TelemetryStore

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name


class Ingest:
    """A telemetry-ingest server on 127.0.0.1:0 over an index and segments in tmp_path, and a client channel."""

    def __init__(self, db_path, hub: Hub | None = None) -> None:
        self.db_path = db_path
        self.hub = hub or Hub()

    async def start(self) -> Ingest:
        self.store = await TelemetryStore.open(self.db_path)
        self.server = GrpcServer(
            lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(self.store, self.hub), s),
            [SERVICE_NAME],
            "127.0.0.1",
            0,
        )
        await self.server.start()
        self.channel = client_channel(self.server.address)
        self.stub = pb_grpc.TelemetryServiceStub(self.channel)
        return self

    async def stop(self) -> None:
        await self.channel.close()
        await self.server.stop(0)
        await self.store.close()

    async def publish(self, *requests: pb.PublishRequest) -> pb.PublishResponse:
        return await self.stub.Publish(iter(requests), timeout=10)

    async def query(self, job_id: str, **kwargs) -> dict[str, list[tuple[int, float]]]:
        reply = await self.stub.Query(pb.QueryRequest(job_id=job_id, **kwargs), timeout=10)
        names = [s.variable for s in reply.series]
        assert names == sorted(names), f"series not sorted by variable: {names}"
        result = {}
        for series in reply.series:
            assert len(series.timestamps_ns) == len(series.values)
            result[series.variable] = list(zip(series.timestamps_ns, series.values, strict=True))
        return result


@pytest.fixture
async def ingest(tmp_path):
    service = await Ingest(tmp_path / "telemetry.db").start()
    yield service
    await service.stop()


def sample(ts: int, **values: float) -> pb.TelemetrySample:
    return pb.TelemetrySample(timestamp_ns=ts, values=values)


def request(job_id: str, *samples: pb.TelemetrySample, batch_id: str = "b1") -> pb.PublishRequest:
    return pb.PublishRequest(job_id=job_id, batch_id=batch_id, samples=samples)


async def test_published_samples_come_back_one_series_per_variable(ingest):
    reply = await ingest.publish(
        request("job-1", sample(10, altitude=400.0, speed=7.6), sample(20, altitude=401.5, speed=7.7)),
        request("job-1", sample(30, altitude=402.25, speed=7.8, mass=12.0)),
    )
    assert reply.accepted_samples == 3
    assert await ingest.query("job-1") == {
        "altitude": [(10, 400.0), (20, 401.5), (30, 402.25)],
        "mass": [(30, 12.0)],
        "speed": [(10, 7.6), (20, 7.7), (30, 7.8)],
    }


async def test_series_are_sorted_by_variable_and_time_whatever_the_publish_order(ingest):
    await ingest.publish(request("job-1", sample(300, z=3.0, a=30.0), sample(100, z=1.0)))
    await ingest.publish(request("job-1", sample(200, z=2.0, a=20.0), sample(-50, a=-5.0)))
    assert await ingest.query("job-1") == {
        "a": [(-50, -5.0), (200, 20.0), (300, 30.0)],
        "z": [(100, 1.0), (200, 2.0), (300, 3.0)],
    }


async def test_jobs_do_not_see_each_other(ingest):
    await ingest.publish(request("job-a", sample(1, x=1.0)), request("job-b", sample(2, x=2.0)))
    assert await ingest.query("job-a") == {"x": [(1, 1.0)]}
    assert await ingest.query("job-b") == {"x": [(2, 2.0)]}
    assert await ingest.query("job-c") == {}


async def test_query_by_variables(ingest):
    await ingest.publish(
        request("job-1", sample(1, a=1.0, b=2.0, c=3.0), sample(2, a=4.0, b=5.0, c=6.0))
    )
    assert await ingest.query("job-1", variables=["c", "a"]) == {
        "a": [(1, 1.0), (2, 4.0)],
        "c": [(1, 3.0), (2, 6.0)],
    }
    assert await ingest.query("job-1", variables=["nope"]) == {}


async def test_query_time_window_is_inclusive_and_zero_is_a_real_bound(ingest):
    await ingest.publish(request("job-1", *[sample(t, x=float(t)) for t in (-20, -10, 0, 10, 20, 30)]))
    assert await ingest.query("job-1", start_ns=10, end_ns=20) == {"x": [(10, 10.0), (20, 20.0)]}
    assert await ingest.query("job-1", start_ns=20) == {"x": [(20, 20.0), (30, 30.0)]}
    # 0 is set, not "unset": only the end bound applies
    assert await ingest.query("job-1", end_ns=0) == {"x": [(-20, -20.0), (-10, -10.0), (0, 0.0)]}
    assert await ingest.query("job-1", start_ns=0) == {
        "x": [(0, 0.0), (10, 10.0), (20, 20.0), (30, 30.0)]
    }
    assert await ingest.query("job-1", start_ns=21, end_ns=29) == {}


async def test_limit_caps_points_per_series(ingest):
    await ingest.publish(
        request("job-1", *[sample(t, many=float(t), few=float(-t)) for t in range(10)]),
        request("job-1", sample(100, many=100.0)),
    )
    series = await ingest.query("job-1", limit=3)
    assert set(series) == {"few", "many"}
    for name, points in series.items():
        assert len(points) == 3, name
        times = [t for t, _ in points]
        assert times == sorted(times)
    assert series["many"] == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert len((await ingest.query("job-1", limit=0))["many"]) == 11


async def test_limit_applies_after_the_time_window(ingest):
    await ingest.publish(request("job-1", *[sample(t, x=float(t)) for t in range(10)]))
    assert await ingest.query("job-1", start_ns=5, limit=2) == {"x": [(5, 5.0), (6, 6.0)]}


async def test_non_finite_values_are_skipped_and_the_rest_of_the_sample_kept(ingest):
    reply = await ingest.publish(
        request(
            "job-1",
            sample(1, a=1.0, b=math.nan),
            sample(2, a=math.inf, b=2.0),
            sample(3, a=-math.inf, b=3.0),
            sample(4, a=4.0, b=4.0),
        )
    )
    assert reply.accepted_samples == 4
    assert await ingest.query("job-1") == {
        "a": [(1, 1.0), (4, 4.0)],
        "b": [(2, 2.0), (3, 3.0), (4, 4.0)],
    }


async def test_extreme_timestamps_and_values_round_trip(ingest):
    big = 2**63 - 1
    await ingest.publish(request("job-1", sample(-(2**63), x=-1e308), sample(big, x=5e-324)))
    assert await ingest.query("job-1") == {"x": [(-(2**63), -1e308), (big, 5e-324)]}


async def test_many_samples_in_one_stream(ingest):
    requests = [
        request("job-1", *[sample(t, x=float(t)) for t in range(b * 500, (b + 1) * 500)])
        for b in range(20)
    ]
    reply = await ingest.publish(*requests)
    assert reply.accepted_samples == 10_000
    points = (await ingest.query("job-1"))["x"]
    assert points == [(t, float(t)) for t in range(10_000)]


def assert_invalid(error: grpc.aio.AioRpcError, field: str, problem: str) -> None:
    """INVALID_ARGUMENT naming `field` in its BadRequest details, with the readable text beside it."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [(field, problem)]
    assert error.details() == f"{field} {problem}"


async def test_publish_without_job_id_is_invalid_argument(ingest):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ingest.publish(request("", sample(1, x=1.0)))
    assert_invalid(err.value, "job_id", "is required")
    assert await ingest.query("job-1") == {}


async def test_empty_publish_stream_accepts_nothing(ingest):
    reply = await ingest.publish()
    assert reply.accepted_samples == 0


@pytest.mark.parametrize(
    ("query", "field", "problem"),
    [
        (pb.QueryRequest(job_id=""), "job_id", "is required"),
        (pb.QueryRequest(job_id="job-1", limit=-1), "limit", "must not be negative"),
        (pb.QueryRequest(job_id="job-1", start_ns=10, end_ns=9), "start_ns", "must not be after end_ns"),
    ],
    ids=["no-job", "negative-limit", "start-after-end"],
)
async def test_bad_queries_are_invalid_argument_naming_the_field(ingest, query, field, problem):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ingest.stub.Query(query, timeout=10)
    assert_invalid(err.value, field, problem)


async def test_data_survives_a_restart_on_the_same_file(tmp_path):
    first = await Ingest(tmp_path / "telemetry.db").start()
    try:
        await first.publish(request("job-1", sample(1, x=1.5), sample(2, x=2.5)))
    finally:
        await first.stop()
    second = await Ingest(tmp_path / "telemetry.db").start()
    try:
        assert await second.query("job-1") == {"x": [(1, 1.5), (2, 2.5)]}
        await second.publish(request("job-1", sample(3, x=3.5)))
        assert await second.query("job-1") == {"x": [(1, 1.5), (2, 2.5), (3, 3.5)]}
    finally:
        await second.stop()


@pytest.mark.parametrize("service", ["", SERVICE_NAME])
async def test_health_is_serving(ingest, service):
    stub = health_pb2_grpc.HealthStub(ingest.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("export", "field", "problem"),
    [
        (pb.ExportRequest(), "job_id or batch_id", "is required"),
        (pb.ExportRequest(job_id="job-1", compression="zip"), "compression", """must be "" or "gzip", not 'zip'"""),
        (pb.ExportRequest(batch_id="b1", compression="GZIP"), "compression", """must be "" or "gzip", not 'GZIP'"""),
        (pb.ExportRequest(job_id="job-1", start_ns=5, end_ns=4), "start_ns", "must not be after end_ns"),
    ],
    ids=["no-job-or-batch", "zip", "upper-case-gzip", "start-after-end"],
)
async def test_bad_exports_are_invalid_argument_naming_the_field(ingest, export, field, problem):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in ingest.stub.Export(export, timeout=10):
            pass
    assert_invalid(err.value, field, problem)


async def test_subscribe_without_batch_or_job_is_invalid_argument(ingest):
    call = ingest.stub.Subscribe(pb.SubscribeRequest(variables=["x"]), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert_invalid(err.value, "batch_id or job_id", "is required")


# ---------------------------------------------------------------- storage


async def test_a_repeated_timestamp_keeps_the_latest_value(ingest):
    """A relay that re-sends a batch after a lost answer must not double the points."""
    await ingest.publish(request("job-1", sample(1, x=1.0), sample(2, x=2.0)))
    await ingest.publish(request("job-1", sample(1, x=1.0), sample(2, x=2.5)))
    assert await ingest.query("job-1") == {"x": [(1, 1.0), (2, 2.5)]}


# ---------------------------------------------------------------- export


async def export_bytes(service: Ingest, export: pb.ExportRequest) -> tuple[bytes, int]:
    """The exported file and the number of messages it came in."""
    chunks = [reply.data async for reply in service.stub.Export(export, timeout=30)]
    return b"".join(chunks), len(chunks)


async def export_csv(service: Ingest, export: pb.ExportRequest) -> list[list[str]]:
    data, _ = await export_bytes(service, export)
    if export.compression == "gzip":
        data = gzip.decompress(data)
    return list(csv.reader(io.StringIO(data.decode())))


async def test_export_of_a_job_is_csv_with_the_header_and_exact_values(ingest):
    await ingest.publish(
        request("job-1", sample(10, a=0.1, b=-2.5e-300), sample(20, a=1 / 3)),
        request("job-2", sample(10, a=99.0)),
    )
    rows = await export_csv(ingest, pb.ExportRequest(job_id="job-1"))
    assert rows[0] == ["job_id", "timestamp_ns", "variable", "value"]
    assert [(r[0], int(r[1]), r[2], float(r[3])) for r in rows[1:]] == [
        ("job-1", 10, "a", 0.1), ("job-1", 20, "a", 1 / 3), ("job-1", 10, "b", -2.5e-300),
    ]


async def test_gzip_export_decompresses_to_the_same_csv(ingest):
    await ingest.publish(request("job-1", *[sample(t, x=t / 7, y=-t / 3) for t in range(500)]))
    plain, _ = await export_bytes(ingest, pb.ExportRequest(job_id="job-1"))
    packed, _ = await export_bytes(ingest, pb.ExportRequest(job_id="job-1", compression="gzip"))
    assert packed[:2] == b"\x1f\x8b"  # a gzip file, as `gunzip` expects
    assert gzip.decompress(packed) == plain
    assert len(packed) < len(plain) / 2
    assert len(plain.splitlines()) == 1 + 1_000


async def test_export_of_a_batch_covers_its_jobs_filtered_by_variable_and_time(ingest):
    await ingest.publish(
        request("job-a", *[sample(t, x=float(t), y=0.0) for t in range(10)], batch_id="b1"),
        request("job-b", *[sample(t, x=-float(t)) for t in range(10)], batch_id="b1"),
        request("job-c", sample(5, x=5.0), batch_id="other"),
    )
    rows = await export_csv(ingest, pb.ExportRequest(batch_id="b1", variables=["x"], start_ns=3, end_ns=4,
                                                     compression="gzip"))
    assert rows[1:] == [
        ["job-a", "3", "x", "3.0"], ["job-a", "4", "x", "4.0"],
        ["job-b", "3", "x", "-3.0"], ["job-b", "4", "x", "-4.0"],
    ]


async def test_export_of_nothing_is_just_the_header(ingest):
    for compression in ("", "gzip"):
        rows = await export_csv(ingest, pb.ExportRequest(batch_id="nope", compression=compression))
        assert rows == [["job_id", "timestamp_ns", "variable", "value"]]


async def test_a_large_export_is_streamed_in_many_messages(ingest):
    for block in range(10):
        await ingest.publish(
            request("job-1", *[sample(t, alpha=t * 1.5, beta=t * 2.5, gamma=t * 3.5)
                               for t in range(block * 2_000, (block + 1) * 2_000)])
        )
    data, messages = await export_bytes(ingest, pb.ExportRequest(job_id="job-1"))
    assert len(data.splitlines()) == 1 + 60_000
    assert messages > 3  # not one message built whole in memory


# ---------------------------------------------------------------- subscribe


async def subscribe(service: Ingest, **kwargs) -> grpc.aio.UnaryStreamCall:
    """A live Subscribe call, returned once the server has registered it (headers received)."""
    call = service.stub.Subscribe(pb.SubscribeRequest(**kwargs), timeout=30)
    await call.initial_metadata()
    return call


async def received(call, n: int) -> list[tuple[str, int, dict[str, float]]]:
    """The next samples of a Subscribe call, until `n` have arrived, as (job, timestamp, values)."""
    got: list[tuple[str, int, dict[str, float]]] = []
    while len(got) < n:
        reply = await asyncio.wait_for(call.read(), 5)
        got += [(reply.job_id, s.timestamp_ns, dict(s.values)) for s in reply.samples]
    return got


async def test_subscribers_receive_samples_published_after_they_subscribed(ingest):
    await ingest.publish(request("job-1", sample(1, x=1.0)))  # before: not replayed
    call = await subscribe(ingest, batch_id="b1")
    await ingest.publish(request("job-1", sample(2, x=2.0, y=3.0)), request("job-2", sample(3, x=4.0)))
    assert await received(call, 2) == [("job-1", 2, {"x": 2.0, "y": 3.0}), ("job-2", 3, {"x": 4.0})]
    call.cancel()


async def test_subscribe_filters_by_batch_job_and_variables(ingest):
    by_job = await subscribe(ingest, batch_id="b1", job_id="job-2", variables=["x"])
    by_batch = await subscribe(ingest, batch_id="b2")
    await ingest.publish(
        request("job-1", sample(1, x=1.0), batch_id="b1"),  # another job
        request("job-2", sample(2, y=9.0), batch_id="b1"),  # no selected variable
        request("job-2", sample(3, x=3.0, y=9.0), sample(4, x=math.nan), batch_id="b1"),
        request("job-3", sample(5, z=5.0), batch_id="b2"),
    )
    assert await received(by_job, 1) == [("job-2", 3, {"x": 3.0})]  # NaN is not stored, not streamed
    assert await received(by_batch, 1) == [("job-3", 5, {"z": 5.0})]
    await ingest.publish(request("job-2", sample(6, x=6.0), batch_id="b1"))
    assert await received(by_job, 1) == [("job-2", 6, {"x": 6.0})]  # nothing else was queued before it
    by_job.cancel()
    by_batch.cancel()


async def test_a_subscriber_that_never_reads_does_not_stall_ingest(tmp_path, caplog):
    service = await Ingest(tmp_path / "telemetry.db", Hub(queue_messages=8)).start()
    try:
        stalled = await subscribe(service, batch_id="b1")  # never read
        start = time.monotonic()
        names = [letter * 300 for letter in "xyz"]  # long names: big messages, few rows
        for block in range(40):  # ~40 MB of messages: far more than gRPC buffers for the stalled stream
            values = dict.fromkeys(names, 1.0)
            await service.publish(request("job-1", *[sample(block * 1_000 + t, **values) for t in range(1_000)]))
        assert time.monotonic() - start < 30.0
        assert len((await service.query("job-1", variables=names[:1]))[names[0]]) == 40_000
        assert "too slow; dropping samples" in caplog.text  # it lost samples; ingest did not wait for it
        live = await subscribe(service, batch_id="b1")  # others still get live data
        await service.publish(request("job-1", sample(10**9, x=7.0)))
        assert await received(live, 1) == [("job-1", 10**9, {"x": 7.0})]
        stalled.cancel()
        live.cancel()
    finally:
        await service.stop()


async def test_subscribers_receive_columnar_blocks_as_samples(ingest):
    call = await subscribe(ingest, job_id="job-1", variables=["y"])
    block = pb.SampleBlock(variables=["x", "y"], timestamps_ns=[1, 2], values=[1.0, 10.0, 2.0, math.inf])
    await ingest.publish(pb.PublishRequest(job_id="job-1", batch_id="b1", blocks=[block]))
    assert await received(call, 1) == [("job-1", 1, {"y": 10.0})]  # the infinite y of t=2 is not stored
    assert await ingest.query("job-1") == {"x": [(1, 1.0), (2, 2.0)], "y": [(1, 10.0)]}
    call.cancel()

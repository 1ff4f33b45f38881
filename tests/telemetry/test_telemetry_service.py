"""Contract of telemetry-ingest over real gRPC: Publish, Query, validation, persistence, health."""

from __future__ import annotations

import math

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_common.server import GrpcServer
from lynx_telemetry.server import TelemetryServicer
from lynx_telemetry.store import TelemetryStore

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name


class Ingest:
    """A telemetry-ingest server on 127.0.0.1:0 over a SQLite file, and a client channel."""

    def __init__(self, db_path) -> None:
        self.db_path = db_path

    async def start(self) -> Ingest:
        self.store = await TelemetryStore.open(self.db_path)
        self.server = GrpcServer(
            lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(self.store), s),
            [SERVICE_NAME],
            "127.0.0.1",
            0,
        )
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(self.server.address)
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


async def test_publish_without_job_id_is_invalid_argument(ingest):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ingest.publish(request("", sample(1, x=1.0)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "job_id" in err.value.details()
    assert await ingest.query("job-1") == {}


async def test_empty_publish_stream_accepts_nothing(ingest):
    reply = await ingest.publish()
    assert reply.accepted_samples == 0


@pytest.mark.parametrize(
    ("query", "word"),
    [(pb.QueryRequest(job_id=""), "job_id"), (pb.QueryRequest(job_id="job-1", limit=-1), "limit")],
)
async def test_bad_queries_are_invalid_argument(ingest, query, word):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ingest.stub.Query(query, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert word in err.value.details()


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

"""Telemetry-ingest's storage: per-job Parquet segments, their index, compression, S3 and paging.

A real telemetry-ingest gRPC server on 127.0.0.1:0 over a real index file and a
segment directory (or the loopback S3 server of tests/conftest.py).
"""

from __future__ import annotations

import io

import grpc
import pyarrow.parquet as pq
import pytest

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_common.errors import ValidationError
from lynx_common.server import GrpcServer, client_channel
from lynx_telemetry.server import TelemetryServicer
from lynx_telemetry.store import TelemetryStore

SERVICE = pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name


class Ingest:
    def __init__(self, tmp_path, **options) -> None:
        self.tmp_path = tmp_path
        self.options = options

    async def __aenter__(self) -> Ingest:
        self.store = await TelemetryStore.open(self.tmp_path / "telemetry.db", **self.options)
        self.server = GrpcServer(
            lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(self.store), s), [SERVICE]
        )
        await self.server.start()
        self.channel = client_channel(self.server.address)
        self.stub = pb_grpc.TelemetryServiceStub(self.channel)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.channel.close()
        await self.server.stop(0)
        await self.store.close()

    async def publish(self, *requests: pb.PublishRequest) -> None:
        await self.stub.Publish(iter(requests), timeout=30)

    async def series(self, job_id: str, **kwargs) -> dict[str, list[tuple[int, float]]]:
        """Every page of a Query, merged."""
        query, out = pb.QueryRequest(job_id=job_id, **kwargs), {}
        while True:
            reply = await self.stub.Query(query, timeout=30)
            for s in reply.series:
                out.setdefault(s.variable, []).extend(zip(s.timestamps_ns, s.values, strict=True))
            if not reply.next_page_token:
                return out
            query.page_token = reply.next_page_token


def block_request(job_id: str, start: int, n: int, batch_id: str = "b1", storage: pb.StorageTarget | None = None,
                  variables: tuple[str, ...] = ("x", "y")) -> pb.PublishRequest:
    """n samples at timestamps start..start+n-1; variable i of sample t is t + i / 10."""
    block = pb.SampleBlock(variables=variables, timestamps_ns=range(start, start + n),
                           values=[t + i / 10 for t in range(start, start + n) for i in range(len(variables))])
    request = pb.PublishRequest(job_id=job_id, batch_id=batch_id, blocks=[block])
    if storage is not None:
        request.storage.CopyFrom(storage)
    return request


def expected(start: int, n: int, i: int = 0) -> list[tuple[int, float]]:
    return [(t, t + i / 10) for t in range(start, start + n)]


async def test_a_job_is_stored_as_parquet_segments_and_a_query_reads_only_its_segments(tmp_path):
    async with Ingest(tmp_path, segment_rows=2_000) as ingest:
        for k in range(5):  # 5 x 1,000 samples x 2 variables: a segment every 2,000 values
            await ingest.publish(block_request("job-a", k * 1_000, 1_000), block_request("job-b", k * 1_000, 1_000))
        await ingest.store.flush()
        segments = ingest.store.segments("job-a")
        assert [s["rows"] for s in segments] == [2_000] * 5
        files = sorted((tmp_path / "telemetry-segments" / "b1" / "job-a").glob("*.parquet"))
        assert [f.name for f in files] == [f"{i:08d}.parquet" for i in range(5)]
        table = pq.read_table(files[0])
        assert table.column_names == ["variable", "timestamp_ns", "value"]
        assert str(table.schema.field("variable").type).startswith("dictionary")

        before = ingest.store.segments_read
        got = await ingest.series("job-a", variables=["y"], start_ns=2_500, end_ns=3_499)
        assert got == {"y": expected(2_500, 1_000, 1)}
        assert ingest.store.segments_read - before == 2  # segments 2 and 3 of job-a, nothing of job-b


async def test_recent_samples_are_queryable_before_their_segment_is_written(tmp_path):
    async with Ingest(tmp_path) as ingest:
        await ingest.publish(block_request("job-1", 0, 100))
        assert ingest.store.segments("job-1") == []  # still in the in-memory tail
        assert (await ingest.series("job-1"))["x"] == expected(0, 100)
        await ingest.store.flush()
        await ingest.publish(block_request("job-1", 50, 100, variables=("x",)))  # overlaps: the later value wins
        assert len(ingest.store.segments("job-1")) == 1
        assert (await ingest.series("job-1"))["x"] == expected(0, 150)


async def test_segments_survive_a_restart(tmp_path):
    async with Ingest(tmp_path) as ingest:
        await ingest.publish(block_request("job-1", 0, 300))
    async with Ingest(tmp_path) as ingest:
        assert (await ingest.series("job-1"))["y"] == expected(0, 300, 1)
        await ingest.publish(block_request("job-1", 300, 10))
        assert len((await ingest.series("job-1"))["y"]) == 310


@pytest.mark.parametrize(("compression", "codec"), [("gzip", "GZIP"), ("none", "UNCOMPRESSED"), ("", "ZSTD"),
                                                    ("zstd", "ZSTD"), ("snappy", "SNAPPY")])
async def test_the_batch_compression_is_the_segments_codec(tmp_path, compression, codec):
    async with Ingest(tmp_path) as ingest:
        await ingest.publish(block_request("job-1", 0, 100, storage=pb.StorageTarget(compression=compression)))
    [path] = (tmp_path / "telemetry-segments").rglob("*.parquet")
    assert pq.ParquetFile(path).metadata.row_group(0).column(2).compression == codec


async def test_an_unknown_compression_is_invalid_argument_naming_the_field(tmp_path):
    async with Ingest(tmp_path) as ingest:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ingest.publish(block_request("job-1", 0, 1, storage=pb.StorageTarget(compression="lzma")))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "storage.compression" in err.value.details()


def test_the_scheduler_refuses_an_unknown_compression_at_submit():
    from lynx_scheduler.validation import validate_config

    config = cfg.BatchConfig(monte_carlo=cfg.MonteCarlo(runs=3))
    config.telemetry.storage.compression = "gzip"
    validate_config(config)
    config.telemetry.storage.compression = "lzma"
    with pytest.raises(ValidationError) as err:
        validate_config(config)
    assert err.value.field == "telemetry.storage.compression"


async def test_a_long_series_comes_back_in_pages(tmp_path):
    async with Ingest(tmp_path) as ingest:
        await ingest.publish(*(block_request("job-1", k * 5_000, 5_000) for k in range(10)))
        first = await ingest.stub.Query(pb.QueryRequest(job_id="job-1", page_points=30_000), timeout=30)
        assert [s.variable for s in first.series] == ["x"] and first.next_page_token
        got = await ingest.series("job-1", page_points=30_000)
        assert got == {"x": expected(0, 50_000), "y": expected(0, 50_000, 1)}
        assert await ingest.series("job-1", page_points=7, limit=10) == {"x": expected(0, 10), "y": expected(0, 10, 1)}
        await ingest.store.flush()
        before = ingest.store.segments_read
        assert await ingest.series("job-1", page_points=30_000) == got  # 4 pages ...
        assert ingest.store.segments_read - before == len(ingest.store.segments("job-1"))  # ... one read


async def test_segments_go_to_the_batch_bucket_under_its_prefix(tmp_path, s3_env):
    bucket = s3_env["make_bucket"]("lynx-telemetry-segments")
    storage = pb.StorageTarget(s3_bucket=bucket, s3_prefix="studies/orbit/", compression="gzip")
    async with Ingest(tmp_path, segment_rows=1_000) as ingest:
        await ingest.publish(*(block_request("job-1", k * 500, 500, storage=storage) for k in range(4)))
    listed = s3_env["client"].list_objects_v2(Bucket=bucket, Prefix="studies/orbit/")
    keys = sorted(o["Key"] for o in listed["Contents"])
    assert keys == [f"studies/orbit/b1/job-1/{i:08d}.parquet" for i in range(4)]
    body = s3_env["client"].get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert pq.ParquetFile(io.BytesIO(body)).metadata.row_group(0).column(2).compression == "GZIP"
    assert not list((tmp_path / "telemetry-segments").rglob("*.parquet"))  # nothing in the data dir
    async with Ingest(tmp_path) as ingest:  # a new ingest process reads them back from the bucket
        assert await ingest.series("job-1", variables=["x"], start_ns=990, end_ns=1_009) == {
            "x": expected(990, 20)
        }
        assert ingest.store.segments_read == 2


async def test_an_unreachable_bucket_keeps_segments_in_the_data_dir(tmp_path, s3_env):
    storage = pb.StorageTarget(s3_bucket="no-such-bucket", s3_prefix="p")
    async with Ingest(tmp_path) as ingest:
        await ingest.publish(block_request("job-1", 0, 100, storage=storage))
    assert len(list((tmp_path / "telemetry-segments").rglob("*.parquet"))) == 1
    async with Ingest(tmp_path) as ingest:
        assert (await ingest.series("job-1"))["x"] == expected(0, 100)


OLD_SERIES_POINTS = """
CREATE TABLE series (series_id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, variable TEXT NOT NULL,
                     batch_id TEXT NOT NULL DEFAULT '', UNIQUE (job_id, variable));
CREATE TABLE points (series_id INTEGER NOT NULL, timestamp_ns INTEGER NOT NULL, value REAL NOT NULL,
                     PRIMARY KEY (series_id, timestamp_ns)) WITHOUT ROWID;
CREATE VIEW samples AS SELECT s.job_id, s.batch_id, s.variable, p.timestamp_ns, p.value
    FROM series s JOIN points p ON p.series_id = s.series_id;
INSERT INTO series VALUES (1, 'job-1', 'x', 'b1'), (2, 'job-2', 'y', 'b1');
INSERT INTO points VALUES (1, 2, 2.0), (1, 1, 1.0), (2, 5, 5.0);
"""
OLD_FLAT = """
CREATE TABLE samples (job_id TEXT NOT NULL, variable TEXT NOT NULL, timestamp_ns INTEGER NOT NULL,
                      value REAL NOT NULL, batch_id TEXT NOT NULL DEFAULT '');
INSERT INTO samples VALUES ('job-1','x',2,2.0,'b1'), ('job-1','x',1,1.0,'b1'), ('job-2','y',5,5.0,'b1');
"""


@pytest.mark.parametrize("layout", [OLD_SERIES_POINTS, OLD_FLAT], ids=["series-points", "flat"])
async def test_telemetry_in_an_old_sqlite_layout_is_moved_into_segments_on_open(tmp_path, layout):
    import sqlite3

    with sqlite3.connect(tmp_path / "telemetry.db") as db:
        db.executescript(layout)
    async with Ingest(tmp_path) as ingest:
        assert await ingest.series("job-1") == {"x": [(1, 1.0), (2, 2.0)]}
        assert await ingest.series("job-2") == {"y": [(5, 5.0)]}
        assert len(ingest.store.segments("job-1")) == 1
    with sqlite3.connect(tmp_path / "telemetry.db") as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert not names & {"series", "points", "samples"}


async def test_the_rest_route_answers_a_series_longer_than_one_page_whole(tmp_path):
    from aiohttp.test_utils import TestClient, TestServer

    from lynx_gateway.server import build_app
    from lynx_telemetry.server import PAGE_POINTS

    n = PAGE_POINTS // 2 + 10_000  # two variables: more points than one Query page holds
    async with Ingest(tmp_path) as ingest:
        await ingest.publish(*(block_request("job-1", k, min(20_000, n - k)) for k in range(0, n, 20_000)))
        app = build_app("127.0.0.1:1", ingest.server.address)  # this route needs no scheduler
        async with TestClient(TestServer(app)) as http:
            reply = await http.get("/jobs/job-1/telemetry")
            assert reply.status == 200
            body = await reply.json()
    assert set(body) == {"job_id", "series"}
    assert body["series"]["y"]["timestamps_ns"] == list(range(n))
    assert body["series"]["y"]["values"] == [t + 0.1 for t in range(n)]
    assert len(body["series"]["x"]["values"]) == n


async def test_a_malformed_block_is_invalid_argument_naming_it(tmp_path):
    async with Ingest(tmp_path) as ingest:
        bad = pb.SampleBlock(variables=["x", "y"], timestamps_ns=[1, 2], values=[1.0, 2.0, 3.0])
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ingest.publish(pb.PublishRequest(job_id="job-1", blocks=[pb.SampleBlock(), bad]))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "blocks[1]" in err.value.details() and "3 values for 2 timestamps x 2 variables" in err.value.details()
        assert await ingest.series("job-1") == {}

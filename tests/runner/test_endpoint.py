"""The runner's per-job telemetry endpoint, end to end with real processes and servers.

A scenario subprocess uses `lynx_telemetry_client` against a per-job endpoint
(JobTelemetryServicer on 127.0.0.1:0, as the engine starts it), which feeds a
Watchdog and a TelemetryRelay; the relay ships to a real telemetry-ingest server
writing segments in tmp_path, and the samples come back through Query.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_cli.stack import free_port
from lynx_common.server import GrpcServer, client_channel
from lynx_runner.endpoint import JobTelemetryServicer
from lynx_runner.relay import FINAL_FLUSH_DEADLINE_S, TelemetryRelay
from lynx_runner.watchdog import Watchdog
from lynx_telemetry.server import TelemetryServicer
from lynx_telemetry.store import TelemetryStore

SERVICE = pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name


@pytest.fixture
async def ingest(tmp_path):
    """A real telemetry-ingest server; yields a stub to it."""
    store = await TelemetryStore.open(tmp_path / "telemetry.db")
    server = GrpcServer(lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(store), s),
                        [SERVICE])
    await server.start()
    channel = client_channel(server.address)
    yield pb_grpc.TelemetryServiceStub(channel)
    await channel.close()
    await server.stop(0)
    await store.close()


class Job:
    """What the engine builds for one job: watchdog, relay and per-job endpoint."""

    def __init__(self, stub, telemetry: cfg.TelemetryConfig, early: cfg.EarlyTermination | None = None) -> None:
        self.watchdog = Watchdog(early or cfg.EarlyTermination())
        self.relay = TelemetryRelay(stub, "job-1", "batch-1", telemetry)
        self.servicer = JobTelemetryServicer(self.watchdog, self.relay)
        self.endpoint = GrpcServer(
            lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(self.servicer, s), [SERVICE]
        )

    async def run_scenario(self, code: str) -> str:
        """Run `code` as a scenario process with TETRYX_TELEMETRY_URL; return its stdout."""
        await self.endpoint.start()
        flusher = asyncio.create_task(self.relay.run_periodic())
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", textwrap.dedent(code),
                env={**os.environ, "TETRYX_TELEMETRY_URL": self.endpoint.address},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await self.endpoint.stop(grace=0.5)
            await self.relay.flush(FINAL_FLUSH_DEADLINE_S)
        return out.decode()


async def query(stub, **kwargs) -> dict[str, list[tuple[int, float]]]:
    reply = await stub.Query(pb.QueryRequest(job_id="job-1", **kwargs), timeout=10)
    return {s.variable: list(zip(s.timestamps_ns, s.values, strict=True)) for s in reply.series}


ORBIT = """
    from lynx_telemetry_client import telemetry_client_from_env

    client = telemetry_client_from_env()
    for i in range(600):  # one sample per simulated second for 10 minutes
        client.send({"orbit.radius_km": 7000.0 + i, "orbit.speed_m_s": 7500.0 - i, "step": float(i)},
                    timestamp_ns=i * 1_000_000_000)
    client.close()
    print(client.sent, client.dropped)
"""


async def test_a_scenarios_samples_reach_query_filtered_and_downsampled(ingest):
    job = Job(ingest, cfg.TelemetryConfig(sampling_rate_hz=0.1, variables=["orbit.radius_km", "orbit.speed_m_s"],
                                          buffer_flush_interval_seconds=0.2))
    out = await job.run_scenario(ORBIT)
    assert out.split() == ["600", "0"]
    assert (job.servicer.received, job.servicer.dropped) == (600, 0)
    stored = await query(ingest)
    assert sorted(stored) == ["orbit.radius_km", "orbit.speed_m_s"]  # "step" is not stored
    assert stored["orbit.radius_km"] == [(t * 10**9, 7000.0 + t) for t in range(0, 600, 10)]  # one per 10 s
    assert stored["orbit.speed_m_s"] == [(t * 10**9, 7500.0 - t) for t in range(0, 600, 10)]
    window = await query(ingest, variables=["orbit.radius_km"], start_ns=100 * 10**9, end_ns=130 * 10**9)
    assert window == {"orbit.radius_km": [(t * 10**9, 7000.0 + t) for t in (100, 110, 120, 130)]}


async def test_the_watchdog_sees_every_sample_even_those_not_stored(ingest):
    early = cfg.EarlyTermination(
        enabled=True, conditions=[cfg.TerminationCondition(variable="step", condition="> 598")]
    )
    job = Job(ingest, cfg.TelemetryConfig(sampling_rate_hz=0.1, variables=["orbit.radius_km"]), early)
    await job.run_scenario(ORBIT)
    breach = job.watchdog.check()
    assert breach is not None and breach.timestamp_ns == 599 * 10**9  # a sample the relay did not keep


FLOOD = """
    from lynx_telemetry_client import TelemetryClient
    import os

    client = TelemetryClient(os.environ["TETRYX_TELEMETRY_URL"], max_buffered=200)
    for i in range(50_000):
        client.send({"x": float(i)}, timestamp_ns=i)
    client.close()
    print(client.sent, client.dropped)
"""


async def test_the_clients_counts_reach_the_endpoint(ingest):
    job = Job(ingest, cfg.TelemetryConfig(buffer_flush_interval_seconds=0.2))
    sent, dropped = map(int, (await job.run_scenario(FLOOD)).split())
    assert dropped > 0 and sent + dropped == 50_000
    assert (job.servicer.received, job.servicer.dropped) == (sent, dropped)
    assert job.relay.stored == sent
    assert len((await query(ingest))["x"]) == sent


async def test_an_ingest_outage_neither_slows_the_scenario_nor_fails_the_flush():
    channel = client_channel(f"127.0.0.1:{free_port()}")  # telemetry-ingest is down for the whole job
    try:
        job = Job(pb_grpc.TelemetryServiceStub(channel), cfg.TelemetryConfig(buffer_flush_interval_seconds=0.1))
        start = asyncio.get_running_loop().time()
        out = await job.run_scenario(ORBIT)  # includes the final flush, bounded by FINAL_FLUSH_DEADLINE_S
        elapsed = asyncio.get_running_loop().time() - start
        assert out.split() == ["600", "0"]  # the scenario delivered everything to its endpoint
        assert job.servicer.received == 600
        assert (job.relay.stored, job.relay.buffered, job.relay.dropped) == (0, 600, 0)  # kept for later
        assert elapsed < 20.0
    finally:
        await channel.close()


async def test_an_unreadable_block_is_dropped_at_the_endpoint_and_counted(ingest):
    job = Job(ingest, cfg.TelemetryConfig())
    await job.endpoint.start()
    channel = client_channel(job.endpoint.address)
    try:
        good = pb.SampleBlock(variables=["x"], timestamps_ns=[1, 2], values=[1.0, 2.0])
        bad = pb.SampleBlock(variables=["x", "x"], timestamps_ns=[3], values=[3.0, 4.0])
        stub = pb_grpc.TelemetryServiceStub(channel)
        reply = await stub.Publish(iter([pb.PublishRequest(blocks=[good, bad])]), timeout=10)
        assert reply.accepted_samples == 2
        assert (job.servicer.received, job.servicer.malformed, job.servicer.lost) == (2, 1, 1)
        assert await job.relay.flush(FINAL_FLUSH_DEADLINE_S)
        assert await query(ingest) == {"x": [(1, 1.0), (2, 2.0)]}
    finally:
        await channel.close()
        await job.endpoint.stop(0)

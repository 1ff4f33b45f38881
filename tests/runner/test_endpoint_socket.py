"""The per-job endpoint's Unix socket (the client's grpc-free path) beside its gRPC port.

Real processes and servers as in test_endpoint.py: a scenario subprocess publishes with
`lynx_telemetry_client` to the URL the engine builds (`telemetry_url`), the endpoint feeds a
Watchdog and a TelemetryRelay, the relay ships to a real telemetry-ingest, Query reads it back.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
import textwrap
import time

import grpc
import pytest
from test_endpoint import SERVICE, ingest, query  # noqa: F401 - `ingest` is a fixture

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_common.server import GrpcServer, client_channel
from lynx_runner.endpoint import JobTelemetryServicer, telemetry_url
from lynx_runner.endpoint_socket import UnixTelemetryEndpoint
from lynx_runner.relay import FINAL_FLUSH_DEADLINE_S, TelemetryRelay
from lynx_runner.watchdog import Watchdog

SECRET = "the-jobs-secret"
STEP_OVER_10 = cfg.EarlyTermination(enabled=True, conditions=[cfg.TerminationCondition(variable="x", condition="> 10")])


class Job:
    """The engine's per-job endpoint: gRPC port and Unix socket over one servicer."""

    def __init__(self, stub, directory, early: cfg.EarlyTermination | None = None) -> None:
        self.watchdog = Watchdog(early or cfg.EarlyTermination())
        self.relay = TelemetryRelay(stub, "job-1", "batch-1", cfg.TelemetryConfig(buffer_flush_interval_seconds=0.2))
        self.servicer = JobTelemetryServicer(self.watchdog, self.relay, SECRET)
        self.grpc = GrpcServer(lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(self.servicer, s), [SERVICE])
        self.unix = UnixTelemetryEndpoint(self.servicer, directory)

    async def __aenter__(self) -> Job:
        await self.grpc.start()
        await self.unix.start()
        self.flusher = asyncio.create_task(self.relay.run_periodic())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.flusher.cancel()
        await asyncio.gather(self.flusher, return_exceptions=True)
        await asyncio.gather(self.grpc.stop(grace=0.5), self.unix.stop(grace=0.5))
        await self.relay.flush(FINAL_FLUSH_DEADLINE_S)

    def url(self, secret: str = SECRET, unix: bool = True) -> str:
        return telemetry_url(self.grpc.address, secret, str(self.unix.path) if unix else None)


async def run_scenario(url: str, code: str) -> list[str]:
    """Run `code` with TETRYX_TELEMETRY_URL=url; its stdout's words."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(code), env={**os.environ, "TETRYX_TELEMETRY_URL": url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode().split()


# linger_s=30: nothing ships until close(), so a buffer of 1,000 drops exactly 4,000 of 5,000 sends
BURST = """
    import os, sys
    from lynx_telemetry_client import TelemetryClient

    client = TelemetryClient(os.environ["TETRYX_TELEMETRY_URL"], max_buffered=1000, linger_s=30)
    for i in range(5000):
        client.send({"x": float(i), "y": -float(i)}, timestamp_ns=i)
    client.close()
    print(client.sent, client.dropped, "grpc" in sys.modules)
"""


async def test_a_scenario_publishing_over_the_socket_is_stored_exactly_without_importing_grpc(ingest, tmp_path):  # noqa: F811
    async with Job(ingest, tmp_path) as job:
        assert stat.S_IMODE(os.stat(job.unix.path).st_mode) == 0o600
        out = await run_scenario(job.url(), BURST)
    assert out == ["1000", "4000", "False"]  # the socket path never imports gRPC
    assert (job.servicer.received, job.servicer.dropped) == (1000, 4000)  # the final count arrived
    assert job.relay.stored == 1000
    stored = await query(ingest)
    assert stored["x"] == [(i, float(i)) for i in range(1000)] and stored["y"] == [(i, -float(i)) for i in range(1000)]
    assert not job.unix.path.exists()  # removed when the job's endpoint stops


async def test_a_wrong_secret_on_the_socket_is_refused_and_never_reaches_the_watchdog(ingest, tmp_path):  # noqa: F811
    code = """
        import os
        from lynx_telemetry_client import TelemetryClient

        client = TelemetryClient(os.environ["TETRYX_TELEMETRY_URL"])
        for i in range(100):
            client.send({"x": float(i)}, timestamp_ns=i)
        client.close()
        print(client.sent, client.dropped)
    """
    async with Job(ingest, tmp_path, STEP_OVER_10) as job:
        out = await run_scenario(job.url(secret="not-" + SECRET), code)
        assert out == ["0", "100"]  # nothing counted as delivered
        assert job.unix.refused >= 1
        assert job.watchdog.check() is None and job.servicer.received == 0
        out = await run_scenario(job.url(), code)  # the same scenario with the job's secret
        assert out == ["100", "0"] and job.watchdog.check() is not None
    assert (await query(ingest))["x"] == [(i, float(i)) for i in range(100)]


async def test_a_plain_grpc_client_with_host_port_and_token_still_publishes(ingest, tmp_path):  # noqa: F811
    async with Job(ingest, tmp_path) as job:
        channel = client_channel(job.grpc.address)
        stub = pb_grpc.TelemetryServiceStub(channel)
        block = pb.SampleBlock(variables=["x"], timestamps_ns=[1, 2], values=[1.0, 2.0])
        reply = await stub.Publish(iter([pb.PublishRequest(blocks=[block])]), timeout=10,
                                   metadata=(("authorization", f"Bearer {SECRET}"),))
        assert reply.accepted_samples == 2
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Publish(iter([pb.PublishRequest(blocks=[block])]), timeout=10,
                               metadata=(("authorization", "Bearer wrong"),))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await channel.close()
        # the client library on a URL without `unix=` (or whose socket is gone) takes gRPC
        assert await run_scenario(job.url(unix=False), BURST) == ["1000", "4000", "True"]
    assert job.servicer.received == 1002


async def test_an_unreachable_socket_falls_back_to_grpc(ingest, tmp_path):  # noqa: F811
    async with Job(ingest, tmp_path) as job:
        url = telemetry_url(job.grpc.address, SECRET, str(tmp_path / "no such dir" / "telemetry.sock"))
        assert await run_scenario(url, BURST) == ["1000", "4000", "True"]
    assert job.relay.stored == 1000


async def test_a_private_dir_too_deep_for_a_socket_path_gets_a_short_one(ingest, tmp_path):  # noqa: F811
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    async with Job(ingest, deep) as job:
        assert len(str(job.unix.path)) <= 100 and not str(job.unix.path).startswith(str(deep))
        assert await run_scenario(job.url(), BURST) == ["1000", "4000", "False"]
        short = job.unix.path
    assert not short.parent.exists()


def test_importing_the_client_imports_neither_grpc_nor_protobuf():
    code = ("import sys, lynx_telemetry_client\n"
            "print(sorted(m for m in ('grpc', 'google.protobuf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_against_a_socket_that_never_answers_close_gives_up_in_time_and_counts_everything(tmp_path):
    from lynx_telemetry_client import TelemetryClient

    path = tmp_path / "stalled.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:  # accepts, never reads or answers
        server.bind(str(path))
        server.listen()
        client = TelemetryClient(f"grpc://127.0.0.1:1?token=t&unix={path}")
        for i in range(2000):
            client.send({"x": float(i)}, timestamp_ns=i)
        started = time.monotonic()
        client.close(timeout=0.5)
        closing = time.monotonic() - started
    assert closing < 3.0, f"close took {closing:.2f} s"
    assert (client.sent, client.dropped) == (0, 2000)

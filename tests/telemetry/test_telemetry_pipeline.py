"""The whole telemetry path with default buffers: scenario process -> per-job endpoint -> relay -> ingest.

A scenario subprocess sends through `lynx_telemetry_client` to a per-job endpoint
(JobTelemetryServicer + TelemetryRelay, as the runner's engine builds them) that
relays to a real telemetry-ingest server; what is stored comes back through Query.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_cli.stack import free_port
from lynx_common.server import GrpcServer, client_channel
from lynx_runner.endpoint import JobTelemetryServicer
from lynx_runner.relay import FINAL_FLUSH_DEADLINE_S, MAX_BUFFERED, TelemetryRelay
from lynx_runner.watchdog import Watchdog
from lynx_telemetry.server import TelemetryServicer
from lynx_telemetry.store import TelemetryStore
from lynx_telemetry_client import DEFAULT_MAX_BUFFERED

SERVICE = pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name

# The scenario: waits for the file `go` between phases, so the test can act in between.
SCENARIO = """
    import json, os, sys, time
    from pathlib import Path
    from lynx_telemetry_client import telemetry_client_from_env

    sync, phases = Path(sys.argv[1]), [int(n) for n in sys.argv[2:]]
    client = telemetry_client_from_env()  # default buffers
    t = 0
    for i, n in enumerate(phases):
        for _ in range(n):
            client.send({"x": float(t)}, timestamp_ns=t)
            t += 1
        (sync / f"sent-{i}").write_text("")
        while i + 1 < len(phases) and not (sync / f"go-{i}").exists():
            time.sleep(0.01)
    client.close(timeout=60)
    print(json.dumps({"sent": client.sent, "dropped": client.dropped}))
"""


async def start_ingest(tmp_path: Path, port: int = 0) -> tuple[GrpcServer, TelemetryStore]:
    store = await TelemetryStore.open(tmp_path / "telemetry.db")
    server = GrpcServer(lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(store), s),
                        [SERVICE], port=port)
    await server.start()
    return server, store


async def stored_times(stub: pb_grpc.TelemetryServiceStub, job_id: str) -> list[int]:
    query, times = pb.QueryRequest(job_id=job_id, variables=["x"]), []
    while True:
        reply = await stub.Query(query, timeout=30)
        times.extend(t for s in reply.series for t in s.timestamps_ns)
        if not reply.next_page_token:
            return times
        query.page_token = reply.next_page_token


class Job:
    """The runner's per-job endpoint and relay in this process, and the scenario as a subprocess."""

    def __init__(self, stub: pb_grpc.TelemetryServiceStub, sync: Path) -> None:
        self.relay = TelemetryRelay(stub, "job-1", "b1", cfg.TelemetryConfig(buffer_flush_interval_seconds=0.2))
        self.servicer = JobTelemetryServicer(Watchdog(cfg.EarlyTermination()), self.relay)
        self.endpoint = GrpcServer(lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(self.servicer, s),
                                   [SERVICE])
        self.sync = sync

    async def start(self, *phases: int) -> asyncio.subprocess.Process:
        await self.endpoint.start()
        self.flusher = asyncio.create_task(self.relay.run_periodic())
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", textwrap.dedent(SCENARIO), str(self.sync), *map(str, phases),
            env={**os.environ, "TETRYX_TELEMETRY_URL": self.endpoint.address},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    async def wait_sent(self, phase: int, *, blocking: bool = False) -> None:
        """Until the scenario has sent phase `phase`; `blocking` holds this event loop meanwhile
        (the endpoint cannot take anything: a runner too busy to read)."""
        marker = self.sync / f"sent-{phase}"
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert time.monotonic() < deadline, "the scenario did not finish sending"
            time.sleep(0.01) if blocking else await asyncio.sleep(0.01)

    def go(self, phase: int) -> None:
        (self.sync / f"go-{phase}").write_text("")

    async def finish(self, proc: asyncio.subprocess.Process) -> dict:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        self.flusher.cancel()
        await asyncio.gather(self.flusher, return_exceptions=True)
        await self.endpoint.stop(grace=0.5)
        await self.relay.flush(FINAL_FLUSH_DEADLINE_S)
        return json.loads(out)


async def test_a_burst_larger_than_the_buffers_is_stored_or_counted_dropped_exactly(tmp_path):
    server, store = await start_ingest(tmp_path)
    channel = client_channel(server.address)
    stub = pb_grpc.TelemetryServiceStub(channel)
    try:
        burst = DEFAULT_MAX_BUFFERED + 50_000
        job = Job(stub, tmp_path)
        proc = await job.start(burst)
        await job.wait_sent(0, blocking=True)  # the runner is stuck while the scenario sends its burst
        counts = await job.finish(proc)
        relay = job.relay
        assert counts["sent"] + counts["dropped"] == burst
        assert counts["dropped"] > 0  # the client's buffer overflowed (a round or two got out first), and it says so
        assert (job.servicer.received, job.servicer.dropped) == (counts["sent"], counts["dropped"])
        assert relay.stored + relay.lost == relay.received == counts["sent"]
        times = await stored_times(stub, "job-1")
        assert len(times) == relay.stored == counts["sent"]
        assert times == sorted(set(times)) and set(times) <= set(range(burst))
        stages = relay.stage_counts(client_dropped=job.servicer.dropped)
        lost = sum(int(stages[k]) for k in ("telemetry_dropped_client", "telemetry_dropped_relay",
                                            "telemetry_unshipped"))
        assert len(times) + lost == burst
    finally:
        await channel.close()
        await server.stop(0)
        await store.close()


async def test_an_ingest_outage_within_the_budget_loses_nothing(tmp_path):
    port = free_port()
    server, store = await start_ingest(tmp_path, port)
    channel = client_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.TelemetryServiceStub(channel)
    try:
        job = Job(stub, tmp_path)
        before, during, after = 20_000, 100_000, 10_000
        assert during < MAX_BUFFERED  # the documented outage budget: the relay's spool per job
        proc = await job.start(before, during, after)
        await job.wait_sent(0)
        while job.relay.stored < before:  # delivered before the outage
            await asyncio.sleep(0.05)
        await server.stop(0)  # ingest goes down mid-job (SIGTERM: its tails become segments)
        await store.close()
        job.go(0)
        await job.wait_sent(1)
        await asyncio.sleep(0.5)  # the relay tries, fails and keeps spooling
        assert job.relay.buffered > 0 and job.relay.dropped == 0
        server, store = await start_ingest(tmp_path, port)  # back, on the same port and data dir
        job.go(1)
        counts = await job.finish(proc)
        total = before + during + after
        assert (counts["sent"], counts["dropped"]) == (total, 0)
        assert (job.relay.stored, job.relay.dropped, job.relay.buffered) == (total, 0, 0)
        assert await stored_times(stub, "job-1") == list(range(total))
    finally:
        await channel.close()
        await server.stop(0)
        await store.close()

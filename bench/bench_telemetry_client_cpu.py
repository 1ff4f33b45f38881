"""Per-job CPU of the telemetry client: the runner's Unix socket against gRPC, in one invocation.

Each run is a fresh scenario process with `lynx_telemetry_client` and its messages already imported
(as the fork server preloads them) that creates the client from TETRYX_TELEMETRY_URL, sends the
tutorial's 540 samples of 6 variables and closes it; it prints its own CPU seconds from the client's
creation to close(). Both URLs point at one runner-style per-job endpoint (gRPC port and Unix socket
over one JobTelemetryServicer), alternating run by run.

    .venv/bin/python bench/bench_telemetry_client_cpu.py [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_common.server import GrpcServer
from lynx_runner.endpoint import JobTelemetryServicer, telemetry_url
from lynx_runner.endpoint_socket import UnixTelemetryEndpoint
from lynx_runner.relay import TelemetryRelay
from lynx_runner.watchdog import Watchdog

JOB = """
import sys, time
import lynx_telemetry_client, lynx_telemetry_client.telemetry_service_pb2
t0 = time.process_time()
client = lynx_telemetry_client.telemetry_client_from_env()
for i in range(540):  # the tutorial: one sample of 6 variables per 10 s step over 90 minutes
    client.send({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0, "f": float(i)}, timestamp_ns=i)
client.close()
print(time.process_time() - t0, client.sent, "grpc" in sys.modules)
"""


async def main(runs: int) -> None:
    relay = TelemetryRelay(None, "job", "batch", cfg.TelemetryConfig(buffer_flush_interval_seconds=1e9),
                           max_buffered=10**9)  # never ships: only the endpoint's side is exercised
    servicer = JobTelemetryServicer(Watchdog(cfg.EarlyTermination()), relay, "secret")
    server = GrpcServer(lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(servicer, s),
                        [pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name])
    await server.start()
    with tempfile.TemporaryDirectory(prefix="lynx-bench-client-") as tmp:
        unix = UnixTelemetryEndpoint(servicer, Path(tmp))
        await unix.start()
        urls = {"Unix socket": telemetry_url(server.address, "secret", str(unix.path)),
                "gRPC": telemetry_url(server.address, "secret")}
        cpu: dict[str, list[float]] = {name: [] for name in urls}
        grpc_imported: dict[str, bool] = {}
        try:
            for _ in range(runs):
                for name, url in urls.items():
                    proc = await asyncio.create_subprocess_exec(
                        sys.executable, "-c", JOB, env={**os.environ, "TETRYX_TELEMETRY_URL": url},
                        stdout=asyncio.subprocess.PIPE)
                    out, _ = await proc.communicate()
                    seconds, sent, imported = out.split()
                    if sent != b"540":
                        raise RuntimeError(f"{name}: the client delivered {sent.decode()} of 540 samples")
                    cpu[name].append(float(seconds))
                    grpc_imported[name] = imported == b"True"
                    relay._queue.clear()
        finally:
            await unix.stop(0)
            await server.stop(0)
    for name, values in cpu.items():
        print(f"  {name:<12} client CPU per job: median {statistics.median(values) * 1e3:6.1f} ms"
              f" (min {min(values) * 1e3:.1f}, {len(values)} runs); grpc imported: {grpc_imported[name]}")
    ratio = statistics.median(cpu["Unix socket"]) / statistics.median(cpu["gRPC"])
    print(f"  Unix socket / gRPC: {ratio:.2f}x the CPU (same invocation)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    asyncio.run(main(parser.parse_args().runs))

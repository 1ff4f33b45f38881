"""Telemetry pipeline benchmark: scenario client -> per-job endpoint + relay -> telemetry-ingest -> segments.

Part 1 runs two scenario processes that send as fast as they can through
`lynx_telemetry_client`, each to its own runner-style per-job endpoint
(JobTelemetryServicer + TelemetryRelay, in this process), which relays to a
real telemetry-ingest server (a separate process) writing Parquet segments; it
reports the drops at every stage (client, relay spool, unshipped), the samples
stored (counted back through paged Query), samples/s from the first send to the
last sample acknowledged by ingest, and that rate as a ratio of the sum of the
emitters' own send() rates (1.0 = the pipeline keeps up with the scenarios).
Every buffer is at its default. The scenarios publish the way a runner's jobs do: over
the endpoint's Unix socket (`unix=` in the URL; the client never imports gRPC); part 1b
repeats part 1 over gRPC (host:port only, as any gRPC client) and prints it against part 1.

Part 2 measures one send() call in microseconds beside an empty Python loop of
the same length.

Part 3 (`--secure`) repeats part 1 with TLS and token auth on and prints it against part 1.

Usage: .venv/bin/python bench/bench_telemetry.py [--samples 200000] [--scenarios 2] [--secure]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_cli.secure import StackSecurity
from lynx_cli.stack import Ports, Stack
from lynx_common.server import GrpcServer, client_channel
from lynx_runner.endpoint import JobTelemetryServicer, telemetry_url
from lynx_runner.endpoint_socket import UnixTelemetryEndpoint
from lynx_runner.relay import TelemetryRelay
from lynx_runner.watchdog import Watchdog

VARIABLES = 6
SCENARIO = """
    import json, os, sys, time
    from lynx_telemetry_client import TelemetryClient

    n = int(sys.argv[1])
    client = TelemetryClient(os.environ["TETRYX_TELEMETRY_URL"])  # default buffers
    names = ["orbit.radius_km", "orbit.speed_m_s", "orbit.semi_major_axis_km",
             "orbit.eccentricity", "orbit.inclination_deg", "orbit.true_anomaly_deg"]
    start, first_send = time.perf_counter(), time.time()
    for i in range(n):
        client.send({names[0]: 7000.0 + i, names[1]: 7500.0, names[2]: 7000.0, names[3]: 0.001,
                     names[4]: 33.3, names[5]: i * 0.01}, timestamp_ns=i * 10_000_000)
    sending = time.perf_counter() - start
    client.close(timeout=120)
    print(json.dumps({"sent": client.sent, "dropped": client.dropped, "send_loop_s": sending,
                      "closed_after_s": time.perf_counter() - start, "cpu_s": time.process_time(),
                      "first_send": first_send}))
"""

SEND_COST = """
    import os, sys, time
    from lynx_telemetry_client import TelemetryClient

    n, linger = int(sys.argv[1]), float(sys.argv[2])
    idle = linger > 60  # the shipping thread waits for flush(): send() alone is measured
    client = TelemetryClient(os.environ["TETRYX_TELEMETRY_URL"], max_buffered=n + 1, linger_s=linger,
                             round_size=n + 1 if idle else 10_000)
    values = {"orbit.radius_km": 7000.0, "orbit.speed_m_s": 7500.0, "orbit.semi_major_axis_km": 7000.0,
              "orbit.eccentricity": 0.001, "orbit.inclination_deg": 33.3, "orbit.true_anomaly_deg": 1.0}
    send = client.send
    best_empty = best_send = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(n):
            pass
        best_empty = min(best_empty, time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(n):
            send(values, timestamp_ns=i)
        best_send = min(best_send, time.perf_counter() - start)
        client.flush(120)
    client.close(120)
    print(best_empty / n * 1e6, best_send / n * 1e6, client.sent, client.dropped)
"""


class PerJobEndpoint:
    """What the runner's engine builds for one job: watchdog, relay, endpoint and periodic flusher."""

    def __init__(self, stub: pb_grpc.TelemetryServiceStub, job_id: str) -> None:
        spec = cfg.TelemetryConfig(buffer_flush_interval_seconds=1.0)
        self.relay = TelemetryRelay(stub, job_id, "bench-batch", spec)
        self.servicer = JobTelemetryServicer(Watchdog(cfg.EarlyTermination()), self.relay)
        self.server = GrpcServer(
            lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(self.servicer, s),
            [pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name],
        )
        self.unix = UnixTelemetryEndpoint(self.servicer, Path(tempfile.mkdtemp(prefix="lynx-bench-sock-")))
        self.flusher: asyncio.Task | None = None

    def url(self, over_socket: bool = True) -> str:
        """TETRYX_TELEMETRY_URL as the runner builds it, or only host:port (gRPC)."""
        return telemetry_url(self.server.address, "", str(self.unix.path)) if over_socket else self.server.address

    async def start(self) -> None:
        await self.server.start()
        await self.unix.start()
        self.flusher = asyncio.create_task(self.relay.run_periodic())

    async def finish(self) -> bool:
        """Stop the flusher and the endpoint, then ship what is left (as the engine does)."""
        self.flusher.cancel()
        await asyncio.gather(self.flusher, return_exceptions=True)
        await asyncio.gather(self.server.stop(grace=0.5), self.unix.stop(grace=0.5))
        shutil.rmtree(self.unix.directory, ignore_errors=True)
        return await self.relay.flush(120.0)


async def run_scenario(address: str, samples: int) -> dict:
    """One scenario process sending `samples` samples as fast as it can."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(SCENARIO), str(samples),
        env={**os.environ, "TETRYX_TELEMETRY_URL": address}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(err.decode())
    return json.loads(out)


async def stored_samples(stub: pb_grpc.TelemetryServiceStub, job_id: str) -> int:
    """Samples of a job that Query returns (timestamps of its first variable), page by page."""
    query = pb.QueryRequest(job_id=job_id, variables=["orbit.radius_km"])
    total = 0
    while True:
        reply = await stub.Query(query, timeout=60)
        total += sum(len(s.timestamps_ns) for s in reply.series)
        if not reply.next_page_token:
            return total
        query.page_token = reply.next_page_token


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one when pid is None), from /proc."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput(address: str, samples: int, scenarios: int, ingest_pid: int, over_socket: bool = True) -> float:
    """Part 1: N scenario processes -> endpoints + relays -> ingest; print the counts and samples/s."""
    async with client_channel(address) as channel:
        stub = pb_grpc.TelemetryServiceStub(channel)
        jobs = [PerJobEndpoint(stub, f"job-{i}-{'unix' if over_socket else 'grpc'}") for i in range(scenarios)]
        for job in jobs:
            await job.start()
        start = time.perf_counter()
        cpu_start = (cpu_seconds(), cpu_seconds(ingest_pid))
        results = await asyncio.gather(*(run_scenario(j.url(over_socket), samples) for j in jobs))
        scenarios_done = time.perf_counter() - start
        flushed = await asyncio.gather(*(job.finish() for job in jobs))
        elapsed = time.perf_counter() - start
        from_first_send = time.time() - min(r["first_send"] for r in results)
        runner_cpu, ingest_cpu = cpu_seconds() - cpu_start[0], cpu_seconds(ingest_pid) - cpu_start[1]
        stored = [await stored_samples(stub, job.relay.job_id) for job in jobs]
    offered = scenarios * samples
    print(f"  {scenarios} scenario processes x {samples:,} samples x {VARIABLES} variables, default buffers,"
          f" over {'the Unix socket' if over_socket else 'gRPC'}")
    for i, (job, r) in enumerate(zip(jobs, results, strict=True)):
        relay = job.relay
        print(f"    scenario {i}: send loop {r['send_loop_s']:.3f} s ({samples / r['send_loop_s']:,.0f} send()/s),"
              f" close() done at {r['closed_after_s']:.2f} s")
        print(f"      drops: client {r['dropped']:,}  relay spool {relay.dropped:,}  unshipped {relay.buffered:,}"
              f"  | client sent {r['sent']:,}  endpoint received {job.servicer.received:,}"
              f"  ingest acknowledged {relay.stored:,}  stored (Query) {stored[i]:,}")
    total_stored = sum(stored)
    send_rate = sum(samples / r["send_loop_s"] for r in results)
    rate = total_stored / from_first_send
    print(f"    total: offered {offered:,}  stored {total_stored:,}  lost {offered - total_stored:,}"
          f"  all flushed: {all(flushed)}")
    print(f"    scenarios finished in {scenarios_done:.2f} s; last sample acknowledged by ingest at {elapsed:.2f} s"
          f" after the processes started, {from_first_send:.2f} s after the first send()")
    print(f"    end-to-end, first send() to last sample acknowledged: {rate:,.0f} samples/s stored"
          f" ({rate * VARIABLES:,.0f} values/s); counting the scenarios' interpreter start-up:"
          f" {total_stored / elapsed:,.0f} samples/s")
    print(f"    emitters' send() rates summed: {send_rate:,.0f} samples/s; stored/sent ratio {rate / send_rate:.2f}")
    scenario_cpu = sum(r["cpu_s"] for r in results)
    total_cpu = scenario_cpu + runner_cpu + ingest_cpu
    print(f"    CPU seconds: scenarios (send + client shipping) {scenario_cpu:.2f}, runner endpoints + relays"
          f" {runner_cpu:.2f}, ingest {ingest_cpu:.2f}; {total_cpu / total_stored * 1e6:.2f} us of CPU per sample;"
          f" load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return rate


async def send_cost(job: PerJobEndpoint, n: int, linger_s: float, label: str) -> None:
    """Part 2: one send() beside an empty loop, in a scenario process against a live endpoint."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(SEND_COST), str(n), str(linger_s),
        env={**os.environ, "TETRYX_TELEMETRY_URL": job.url()},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(err.decode())
    empty_us, send_us, sent, dropped = out.split()
    empty_us, send_us = float(empty_us), float(send_us)
    print(f"  {label}: {n:,} iterations, best of 3 ({VARIABLES}-variable dict, explicit timestamp;"
          f" sent {int(sent):,}, dropped {int(dropped):,})")
    print(f"    empty loop: {empty_us:.3f} us per iteration")
    print(f"    send():     {send_us:.3f} us per call")
    print(f"    ratio:      {send_us / empty_us:.1f}x an empty loop iteration")


async def bench(address: str, samples: int, scenarios: int, ingest_pid: int) -> float:
    print("(1) end-to-end throughput")
    rate = await throughput(address, samples, scenarios, ingest_pid)
    print("(1b) the same over gRPC (host:port only)")
    over_grpc = await throughput(address, samples, scenarios, ingest_pid, over_socket=False)
    print(f"  Unix socket {rate:,.0f} samples/s, gRPC {over_grpc:,.0f} samples/s in this invocation:"
          f" socket / gRPC {rate / over_grpc:.2f}x")
    print("(2) cost of one send()")
    async with client_channel(address) as channel:
        job = PerJobEndpoint(pb_grpc.TelemetryServiceStub(channel), "send-cost")
        await job.start()
        try:
            await send_cost(job, samples, 3600.0, "shipping thread idle during the loop (ships at flush)")
            await send_cost(job, samples, 0.02, "shipping thread shipping concurrently (default)")
        finally:
            await job.finish()
    return rate


def secured_throughput(samples: int, scenarios: int) -> float:
    """Part 1 again with TLS and token auth on: telemetry-ingest serves TLS and checks tokens against a
    scheduler (the relays send the admin token, as a runner sends its own)."""
    with tempfile.TemporaryDirectory(prefix="lynx-bench-telemetry-tls-") as tmp:
        security = StackSecurity(tls=True, auth=True)
        stack = Stack(Path(tmp), Ports(0, 0, 0, 0), services=("sampler", "scheduler", "telemetry"), security=security)
        with stack:
            saved = {k: os.environ.get(k) for k in security.env()}
            os.environ.update(security.env())  # the relays' channels: LYNX_TLS_CA and LYNX_TOKEN
            try:
                print(f"(3) end-to-end throughput with TLS and token auth, ingest on {stack.ports.telemetry_addr}")
                return asyncio.run(throughput(stack.ports.telemetry_addr, samples, scenarios,
                                              stack["telemetry"].pid))
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000, help="samples per scenario process")
    parser.add_argument("--scenarios", type=int, default=2)
    parser.add_argument("--secure", action="store_true",
                        help="also run part 1 with TLS and token auth on, and print it against plaintext")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lynx-bench-telemetry-") as tmp:
        data_dir = Path(tmp)
        # telemetry-ingest as its own process, stopped (SIGTERM) when the bench ends
        with Stack(data_dir, Ports(0, 0, 0, 0), services=("telemetry",)) as ingest:
            address = ingest.ports.telemetry_addr
            print(f"telemetry-ingest pid {ingest['telemetry'].pid} on {address},"
                  f" segments under {data_dir / 'telemetry-segments'}")
            plain = asyncio.run(bench(address, args.samples, args.scenarios, ingest["telemetry"].pid))
    if args.secure:
        secured = secured_throughput(args.samples, args.scenarios)
        print(f"  TLS and token auth: {secured:,.0f} samples/s against {plain:,.0f} plaintext in this invocation:"
              f" {secured / plain:.2f}x (target >= 0.90x)")


if __name__ == "__main__":
    main()

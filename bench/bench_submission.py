"""Submitting big batches: time and scheduler memory for 10,000 and 100,000 runs of 20 parameters.

Real sampler and scheduler processes on loopback, a fresh SQLite file per size. The scheduler's
peak resident memory (VmHWM) is read from /proc after its start-up and after the submission;
the growth for the 100k batch is printed beside the growth for the 10k batch (the baseline of
this run): a streaming submission keeps them close, a buffered one grows ~10x.

    .venv/bin/python bench/bench_submission.py [--sizes 10000 100000] [--params 20]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def config(params: int) -> cfg.BatchConfig:
    c = cfg.BatchConfig()
    c.simulation.name = "bench"
    c.monte_carlo.sampling_method = "latin_hypercube"
    c.monte_carlo.seed = 7
    for i in range(params):
        d = c.dispersions.add(name=f"p{i:02d}")
        if i % 2:
            d.distribution.type, d.distribution.mean, d.distribution.std = "normal", 0.0, 1.0
        else:
            d.distribution.type, d.distribution.min, d.distribution.max = "uniform", -1.0, 1.0
    return c


def wait_ready(addr: str, timeout: float = 30.0) -> None:
    with grpc.insecure_channel(addr) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)


def measure(runs: int, params: int, workdir: Path) -> tuple[float, float]:
    """(seconds to submit, scheduler peak-RSS growth in MiB) for one batch on a fresh stack."""
    sampler_port, scheduler_port = free_port(), free_port()
    py = sys.executable
    procs = [
        subprocess.Popen([py, "-m", "lynx_sampler.server", "--port", str(sampler_port)],
                         stderr=subprocess.DEVNULL),
        subprocess.Popen([py, "-m", "lynx_scheduler.server", "--port", str(scheduler_port),
                          "--data-dir", str(workdir / f"data-{runs}"),
                          "--sampler-addr", f"127.0.0.1:{sampler_port}"], stderr=subprocess.DEVNULL),
    ]
    try:
        wait_ready(f"127.0.0.1:{sampler_port}")
        wait_ready(f"127.0.0.1:{scheduler_port}")
        scheduler_pid = procs[1].pid
        with grpc.insecure_channel(f"127.0.0.1:{scheduler_port}") as channel:
            stub = pb_grpc.SchedulerServiceStub(channel)
            stub.ListBatches(pb.ListBatchesRequest(), timeout=10)  # warm the servicer path
            before = peak_rss_mib(scheduler_pid)
            start = time.perf_counter()
            reply = stub.SubmitBatch(pb.SubmitBatchRequest(runs_override=runs, config=config(params)), timeout=600)
            elapsed = time.perf_counter() - start
            assert reply.total_jobs == runs, reply
            after = peak_rss_mib(scheduler_pid)
        return elapsed, after - before
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--params", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(runs, *measure(runs, args.params, Path(tmp))) for runs in args.sizes]
    base_runs, base_s, base_mib = rows[0]
    print(f"SubmitBatch, {args.params} parameters, latin_hypercube, real sampler + scheduler processes")
    print(f"{'runs':>8} {'seconds':>8} {'runs/s':>9} {'sched peak RSS growth MiB':>26} {'growth vs baseline':>19}")
    for runs, seconds, mib in rows:
        ratio = (mib / base_mib) if base_mib > 0 else float("nan")
        print(f"{runs:>8} {seconds:>8.2f} {runs / seconds:>9.0f} {mib:>26.1f} {ratio:>18.2f}x")
    print(f"(baseline: the {base_runs}-run batch of this run; batch size ratio {rows[-1][0] / base_runs:.0f}x)")


if __name__ == "__main__":
    main()

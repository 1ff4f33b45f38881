"""Submitting big batches: time and scheduler memory for 10,000 and 100,000 runs of 20 parameters.

Real sampler and scheduler processes on loopback, a fresh SQLite file per size. For each size the
bare sampler stream of the same sample (this process reading every SampleResponse of
SamplerService.Sample straight from the sampler) is timed first, then SubmitBatch; the ratio of
the two is the scheduler's cost over sampling (target: at most 2.5x at 100,000 runs). The
scheduler's peak resident memory (VmHWM) is read from /proc after its start-up and after the
submission; the growth for the 100k batch is printed beside the growth for the 10k batch (the
baseline of this run): a streaming submission keeps them close, a buffered one grows ~10x.

    .venv/bin/python bench/bench_submission.py [--sizes 10000 100000] [--params 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import grpc

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.sampler.v1 import sampler_service_pb2 as sampler_pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_cli.stack import Stack


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


def stream_seconds(addr: str, runs: int, c: cfg.BatchConfig) -> float:
    """Seconds to read the whole Sample stream of `runs` runs of config `c` from the sampler."""
    mc = c.monte_carlo
    request = sampler_pb.SampleRequest(dispersions=c.dispersions, sampling_method=mc.sampling_method, runs=runs,
                                       seed=mc.seed)
    with grpc.insecure_channel(addr) as channel:
        stub = sampler_grpc.SamplerServiceStub(channel)
        start = time.perf_counter()
        got = sum(len(chunk.runs.run_ids) for chunk in stub.Sample(request, timeout=600))
        elapsed = time.perf_counter() - start
    assert got == runs, got
    return elapsed


def measure(runs: int, params: int, workdir: Path, repeat: int) -> tuple[float, float, float]:
    """(seconds of the bare sampler stream, seconds to submit, scheduler peak-RSS growth in MiB)
    on a fresh stack: the best of `repeat` alternating stream and submission timings (the
    machine is shared; the minimum is the least disturbed), memory from the first submission."""
    with Stack(workdir / f"data-{runs}", services=("sampler", "scheduler")) as stack:
        sampler_addr, scheduler_addr = stack.ports.sampler_addr, stack.ports.scheduler_addr
        scheduler_pid = stack["scheduler"].pid
        stream_seconds(sampler_addr, 100, config(params))  # warm the sampler
        bare, elapsed, growth = [], [], None
        with grpc.insecure_channel(scheduler_addr) as channel:
            stub = pb_grpc.SchedulerServiceStub(channel)
            stub.ListBatches(pb.ListBatchesRequest(), timeout=10)  # warm the servicer path
            for _ in range(repeat):
                bare.append(stream_seconds(sampler_addr, runs, config(params)))
                before = peak_rss_mib(scheduler_pid)
                start = time.perf_counter()
                request = pb.SubmitBatchRequest(runs_override=runs, config=config(params))
                reply = stub.SubmitBatch(request, timeout=600)
                elapsed.append(time.perf_counter() - start)
                assert reply.total_jobs == runs, reply
                if growth is None:
                    growth = peak_rss_mib(scheduler_pid) - before
        return min(bare), min(elapsed), growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--params", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="timings per size; the best is printed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(runs, *measure(runs, args.params, Path(tmp), args.repeat)) for runs in args.sizes]
    base_runs, _, _, base_mib = rows[0]
    print(f"SubmitBatch, {args.params} parameters, latin_hypercube, real sampler + scheduler processes")
    print(f"{'runs':>8} {'stream s':>9} {'submit s':>9} {'submit/stream':>14} {'runs/s':>9}"
          f" {'sched peak RSS growth MiB':>26} {'growth vs baseline':>19}")
    for runs, bare, seconds, mib in rows:
        ratio = (mib / base_mib) if base_mib > 0 else float("nan")
        print(f"{runs:>8} {bare:>9.2f} {seconds:>9.2f} {seconds / bare:>13.2f}x {runs / seconds:>9.0f}"
              f" {mib:>26.1f} {ratio:>18.2f}x")
    print(f"(baseline: the {base_runs}-run batch of this run; batch size ratio {rows[-1][0] / base_runs:.0f}x)")


if __name__ == "__main__":
    main()

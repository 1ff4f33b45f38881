"""Benchmark: 100,000 runs x 20 parameters through lynx_sampler.core, beside scipy.stats.qmc
called directly on the same sizes (unit points alone, and mapped through the same scipy ppf),
and the gRPC streaming path (typed columns) from a real sampler process on 127.0.0.1.

Run: .venv/bin/python bench/bench_sampling.py [--runs N] [--dims D] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from scipy import stats
from scipy.stats import qmc

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.sampler.v1 import sampler_service_pb2 as pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as pb_grpc
from lynx_common.columns import rows
from lynx_common.server import client_channel
from lynx_sampler import core

# A mix of distributions, cycled to the requested number of parameters.
MIX: list[dict] = [
    {"type": "uniform", "min": 0.0, "max": 10.0},
    {"type": "normal", "mean": 100.0, "std": 5.0},
    {"type": "truncated_normal", "mean": 0.0, "std": 1.0, "min": -1.5, "max": 2.0},
    {"type": "lognormal", "mu": 0.0, "sigma": 0.4},
    {"type": "triangular", "min": 0.0, "mode": 2.0, "max": 5.0},
    {"type": "beta", "alpha": 2.0, "beta": 5.0, "min": 0.0, "max": 1.0},
    {"type": "exponential", "rate": 0.5},
    {"type": "integer_uniform", "min": 1, "max": 6},
    {"type": "choice", "values": [1.0, 2.0, 4.0], "weights": [0.5, 0.3, 0.2]},
    {"type": "uniform", "min": -1.0, "max": 1.0},
]


def dispersions(dims: int) -> list[tuple[str, dict]]:
    """`dims` parameters cycling through MIX."""
    return [(f"p{i:02d}", dict(MIX[i % len(MIX)])) for i in range(dims)]


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Fastest wall time of `repeat` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def scipy_baseline(method: str, runs: int, dims: int, seed: int) -> Callable[[], object]:
    """The bare unit-cube generator for `method`, called directly."""
    if method == "latin_hypercube":
        return lambda: qmc.LatinHypercube(d=dims, rng=np.random.default_rng(seed)).random(runs)
    if method == "sobol":
        return lambda: qmc.Sobol(d=dims, rng=np.random.default_rng(seed)).random(runs)
    if method == "halton":
        return lambda: qmc.Halton(d=dims, rng=np.random.default_rng(seed)).random(runs)
    return lambda: np.random.default_rng(seed).random((runs, dims))


def scipy_ppf(dims: int) -> Callable[[np.ndarray], object]:
    """The same marginals mapped with scipy.stats directly (no lynx code), for a fair baseline."""
    frozen = [
        stats.uniform(0.0, 10.0),
        stats.norm(100.0, 5.0),
        stats.truncnorm(-1.5, 2.0),
        stats.lognorm(s=0.4),
        stats.triang(0.4, 0.0, 5.0),
        stats.beta(2.0, 5.0),
        stats.expon(scale=2.0),
        None,  # integer_uniform 1..6
        None,  # choice
        stats.uniform(-1.0, 2.0),
    ]

    def mapped(u: np.ndarray) -> list:
        out = []
        for j in range(dims):
            dist = frozen[j % len(frozen)]
            if dist is not None:
                out.append(dist.ppf(u[:, j]))
            elif j % len(frozen) == 7:
                out.append(1 + np.floor(u[:, j] * 6))
            else:
                out.append(np.searchsorted([0.5, 0.8], u[:, j], side="right"))
        return out

    return mapped


def core_table(runs: int, dims: int, repeat: int) -> None:
    """Print lynx core vs scipy (unit points alone, and with the same ppf mapping) per method."""
    specs = dispersions(dims)
    mapped = scipy_ppf(dims)
    print(f"core: {runs} runs x {dims} parameters (mixed distributions, ppf mapping included), best of {repeat}")
    print(f"{'method':<18}{'lynx s':>9}{'scipy s':>9}{'ratio':>7}{'scipy+ppf s':>13}{'ratio':>7}")
    for method in ("random", "latin_hypercube", "sobol", "halton"):
        lynx = best_of(repeat, lambda m=method: core.sample(specs, m, runs, seed=7))
        generate = scipy_baseline(method, runs, dims, 7)
        base = best_of(repeat, generate)
        with_ppf = best_of(repeat, lambda g=generate: mapped(g()))
        print(f"{method:<18}{lynx:>9.3f}{base:>9.3f}{lynx / base:>7.1f}{with_ppf:>13.3f}{lynx / with_ppf:>7.2f}")
    correlated = {"parameters": ["p00", "p01", "p03"], "matrix": [[1, 0.6, -0.3], [0.6, 1, 0.2], [-0.3, 0.2, 1]]}
    lynx = best_of(repeat, lambda: core.sample(specs, "latin_hypercube", runs, seed=7, correlation=correlated))
    print(f"{'lhs + correlation':<18}{lynx:>9.3f}   (Iman-Conover on 3 of the {dims} parameters)")


def proto_dispersions(dims: int) -> list[cfg.Dispersion]:
    """The same mix as protos."""
    out = []
    for name, spec in dispersions(dims):
        fields = {k: v for k, v in spec.items() if k != "values"}
        distribution = cfg.Distribution(**fields)
        for v in spec.get("values", []):
            distribution.values.add().number_value = v
        out.append(cfg.Dispersion(name=name, distribution=distribution))
    return out


async def stream_once(address: str, request: pb.SampleRequest, decode: bool = False) -> tuple[int, int]:
    """Consume a whole Sample stream (typed columns), optionally decoding every run to Python
    values as a run config carries them; (points, chunks)."""
    async with client_channel(address) as channel:
        stub = pb_grpc.SamplerServiceStub(channel)
        points = chunks = 0
        async for response in stub.Sample(request, timeout=300):
            points += len(rows(response.runs)) if decode else len(response.runs.run_ids)
            chunks += 1
        return points, chunks


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_serving(address: str) -> None:
    """Wait until the server's health check answers SERVING."""
    for _ in range(200):
        try:
            async with client_channel(address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"sampler at {address} did not become healthy")


async def grpc_bench(runs: int, dims: int, repeat: int) -> None:
    """Print the time to stream the whole sample from a real sampler process on 127.0.0.1."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lynx_sampler.server", "--port", str(port)], stderr=subprocess.DEVNULL
    )
    address = f"127.0.0.1:{port}"
    try:
        await wait_serving(address)
        for method, decode in (("latin_hypercube", False), ("sobol", False), ("latin_hypercube", True)):
            request = pb.SampleRequest(dispersions=proto_dispersions(dims), sampling_method=method, runs=runs, seed=7)
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                points, chunks = await stream_once(address, request, decode)
                times.append(time.perf_counter() - start)
            what = " + decoded to Python rows" if decode else ""
            print(
                f"grpc stream {method}{what}: {points} runs x {dims} parameters in {chunks} chunks: "
                f"{min(times):.3f} s (best of {repeat}; sampler in its own process, client here)"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    """Parse arguments and run both benchmarks."""
    warnings.filterwarnings("ignore", message="The balance properties of Sobol")  # scipy's, for n = 100,000
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    core_table(args.runs, args.dims, args.repeat)
    asyncio.run(grpc_bench(args.runs, args.dims, args.repeat))


if __name__ == "__main__":
    main()

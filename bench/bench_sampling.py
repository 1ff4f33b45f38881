"""Benchmark: 100,000 runs x 20 parameters through lynx_sampler.core, beside scipy.stats.qmc
called directly on the same sizes, and the gRPC streaming path against a real local server.

Run: .venv/bin/python bench/bench_sampling.py [--runs N] [--dims D] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import warnings
from collections.abc import Callable

import numpy as np
from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.sampler.v1 import sampler_service_pb2 as pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as pb_grpc
from lynx_common.server import client_channel
from lynx_sampler import core
from lynx_sampler.server import build_server
from scipy.stats import qmc

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


def core_table(runs: int, dims: int, repeat: int) -> None:
    """Print lynx core vs scipy for each method."""
    specs = dispersions(dims)
    print(f"core: {runs} runs x {dims} parameters (mixed distributions, ppf mapping included), best of {repeat}")
    print(f"{'method':<18}{'lynx s':>10}{'scipy s':>10}{'ratio':>8}")
    for method in ("random", "latin_hypercube", "sobol", "halton"):
        lynx = best_of(repeat, lambda m=method: core.sample(specs, m, runs, seed=7))
        base = best_of(repeat, scipy_baseline(method, runs, dims, 7))
        print(f"{method:<18}{lynx:>10.3f}{base:>10.3f}{lynx / base:>8.1f}")
    correlated = {"parameters": ["p00", "p01", "p03"], "matrix": [[1, 0.6, -0.3], [0.6, 1, 0.2], [-0.3, 0.2, 1]]}
    lynx = best_of(repeat, lambda: core.sample(specs, "latin_hypercube", runs, seed=7, correlation=correlated))
    print(f"{'lhs + correlation':<18}{lynx:>10.3f}{'':>10}{'':>8}")


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


async def stream_once(address: str, request: pb.SampleRequest) -> tuple[int, int]:
    """Consume a whole Sample stream; (points, chunks)."""
    async with client_channel(address) as channel:
        stub = pb_grpc.SamplerServiceStub(channel)
        points = chunks = 0
        async for response in stub.Sample(request, timeout=300):
            points += len(response.parameter_sets)
            chunks += 1
        return points, chunks


async def grpc_bench(runs: int, dims: int, repeat: int) -> None:
    """Print the time to stream the whole sample from a real server on 127.0.0.1."""
    server = build_server("127.0.0.1", 0)
    await server.start()
    try:
        for method in ("latin_hypercube", "sobol"):
            request = pb.SampleRequest(dispersions=proto_dispersions(dims), sampling_method=method, runs=runs, seed=7)
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                points, chunks = await stream_once(server.address, request)
                times.append(time.perf_counter() - start)
            print(
                f"grpc stream {method}: {points} runs x {dims} parameters in {chunks} chunks: "
                f"{min(times):.3f} s (best of {repeat}; server and client in one process)"
            )
    finally:
        await server.stop(0)


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

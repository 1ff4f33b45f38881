"""Sampling methods: points of the unit hypercube, and their continuation for batch extension.

Every generator is a numpy Generator seeded from the batch seed (and, where needed, a fixed
spawn key naming its purpose), so the same request gives the same points on every machine.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import qmc

# Spawn keys that keep each auxiliary stream independent of the main one and of the per-run
# seeds (which use the one-word key (run_id,)).
LHS_REFINE_KEY = (0x4C48_5352, 1)
CORRELATION_KEY = (0x4943_4F4E, 1)


def aux_rng(seed: int, key: tuple[int, int], *extra: int) -> np.random.Generator:
    """A generator for one auxiliary purpose, determined by (seed, key, extra)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(*key, *extra)))


def latin_hypercube(runs: int, dims: int, seed: int, optimization: str) -> np.ndarray:
    """scipy's LatinHypercube: one point in each of the `runs` strata of every dimension."""
    engine = qmc.LatinHypercube(d=dims, optimization=optimization or None, rng=np.random.default_rng(seed))
    return engine.random(runs)


def refine_latin_hypercube(base: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """`total - n` new points that, with the n points of the LHS `base`, put exactly one point
    in each of the `total` strata of every dimension (`total` must be a multiple of n).

    Each of the n strata splits into m = total / n sub-strata; the base point occupies one of
    them, and the free sub-strata are dealt to the new points in a random order per dimension,
    each point uniform within its sub-stratum.
    """
    n, dims = base.shape
    m = total // n
    new = np.empty((total - n, dims))
    for j in range(dims):
        stratum = np.minimum(np.floor(base[:, j] * n).astype(np.int64), n - 1)
        occupied = np.clip(np.floor(base[:, j] * total).astype(np.int64), stratum * m, stratum * m + m - 1)
        free = np.ones(total, dtype=bool)
        free[occupied] = False
        cells = rng.permutation(np.flatnonzero(free))
        new[:, j] = (cells + rng.random(total - n)) / total
    return new


def uniform_random(existing: int, runs: int, dims: int, seed: int) -> np.ndarray:
    """Independent uniform points: rows existing .. existing + runs - 1 of one PCG64 stream.

    Each double takes exactly one 64-bit output of PCG64, so row i always comes from outputs
    i*dims .. i*dims + dims - 1, and `advance` jumps straight to row `existing`.
    """
    rng = np.random.default_rng(seed)
    rng.bit_generator.advance(existing * dims)
    return rng.random((runs, dims))


def low_discrepancy(method: str, existing: int, runs: int, dims: int, seed: int) -> np.ndarray:
    """Scrambled Sobol' or Halton points existing .. existing + runs - 1 of the seeded sequence."""
    engine_type = qmc.Sobol if method == "sobol" else qmc.Halton
    engine = engine_type(d=dims, scramble=True, rng=np.random.default_rng(seed))
    if existing:
        engine.fast_forward(existing)
    with warnings.catch_warnings():
        # the balance warning is turned into a sampler warning by the caller
        warnings.simplefilter("ignore", UserWarning)
        return engine.random(runs)


def unit_points(method: str, existing: int, runs: int, dims: int, seed: int, optimization: str) -> np.ndarray:
    """Points of [0, 1)^dims, shape (runs, dims), for runs existing .. existing + runs - 1."""
    if method == "random":
        return uniform_random(existing, runs, dims, seed)
    if method in ("sobol", "halton"):
        return low_discrepancy(method, existing, runs, dims, seed)
    if not existing:
        return latin_hypercube(runs, dims, seed, optimization)
    base = latin_hypercube(existing, dims, seed, optimization)
    return refine_latin_hypercube(base, existing + runs, aux_rng(seed, LHS_REFINE_KEY, existing, existing + runs))


def grid_codes(levels: list[np.ndarray]) -> np.ndarray:
    """Full factorial of the per-parameter level codes; the first parameter varies slowest."""
    mesh = np.meshgrid(*levels, indexing="ij")
    return np.column_stack([m.reshape(-1) for m in mesh])

"""Statistical properties of the samples: LHS stratification, bounds, reproducibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from lynx_sampler import core
from scipy import stats

TUTORIAL = Path(__file__).resolve().parents[2] / "scenarios/aerospace/configs/basic_orbit_tutorial.yaml"


def strata(u: np.ndarray, n: int) -> np.ndarray:
    """Index of the equal-probability stratum (of n) each CDF value falls in."""
    return np.minimum(np.floor(u * n).astype(int), n - 1)


def tutorial_dispersions() -> list[tuple[str, dict]]:
    document = yaml.safe_load(TUTORIAL.read_text())
    return [(name, d["distribution"]) for name, d in document["dispersions"].items()]


@pytest.mark.parametrize("runs", [2, 7, 100, 1000])
@pytest.mark.parametrize("seed", [0, 42])
def test_latin_hypercube_has_one_point_per_stratum(runs, seed):
    specs = [
        ("u1", {"type": "uniform", "min": -5.0, "max": 5.0}),
        ("n1", {"type": "normal", "mean": 3.0, "std": 0.5}),
        ("u2", {"type": "uniform", "min": 6.95e6, "max": 7.05e6}),
        ("n2", {"type": "normal", "mean": -1e3, "std": 250.0}),
    ]
    params = core.build_parameters(specs)
    points = core.sample(params, "latin_hypercube", runs, seed)
    assert points.shape == (runs, len(specs))
    for column, param in enumerate(params):
        u = param.dist.cdf(points[:, column])
        assert sorted(strata(u, runs)) == list(range(runs)), param.name


def test_random_method_is_not_stratified():
    params = core.build_parameters([("x", {"type": "uniform", "min": 0.0, "max": 1.0})])
    points = core.sample(params, "random", 1000, seed=5)
    # 1000 iid draws hitting each of 1000 strata exactly once has probability ~1e-432
    assert len(set(strata(points[:, 0], 1000))) < 1000
    # ...but they are still uniform on [0, 1]
    assert stats.kstest(points[:, 0], "uniform").pvalue > 1e-3


@pytest.mark.parametrize("method", core.METHODS)
def test_same_seed_reproduces_and_other_seed_differs(method):
    params = core.build_parameters(tutorial_dispersions())
    first = core.sample(params, method, 50, seed=1234)
    again = core.sample(params, method, 50, seed=1234)
    other = core.sample(params, method, 50, seed=1235)
    assert np.array_equal(first, again)
    assert not np.any(np.all(first == other, axis=1)), "another seed should give other points"


@pytest.mark.parametrize("method", core.METHODS)
def test_uniform_points_lie_within_bounds(method):
    specs = [
        ("tiny", {"type": "uniform", "min": 5.0e-05, "max": 0.002}),
        ("wide", {"type": "uniform", "min": -1e9, "max": 1e9}),
        ("narrow", {"type": "uniform", "min": 0.70, "max": 0.70000001}),
    ]
    params = core.build_parameters(specs)
    points = core.sample(params, method, 2000, seed=11)
    for column, (name, spec) in enumerate(specs):
        values = points[:, column]
        assert values.min() >= spec["min"], name
        assert values.max() <= spec["max"], name


def test_normal_latin_hypercube_has_requested_moments():
    params = core.build_parameters([("x", {"type": "normal", "mean": 10.0, "std": 2.0})])
    values = core.sample(params, "latin_hypercube", 2000, seed=8)[:, 0]
    assert values.mean() == pytest.approx(10.0, abs=0.05)
    assert values.std() == pytest.approx(2.0, rel=0.02)


def test_tutorial_five_runs_seed_42_cover_five_strata_per_parameter():
    specs = tutorial_dispersions()
    assert len(specs) == 7
    params = core.build_parameters(specs)
    points = core.sample(params, "latin_hypercube", 5, seed=42)
    assert points.shape == (5, 7)
    for column, (name, spec) in enumerate(specs):
        values = points[:, column]
        assert np.all((values >= spec["min"]) & (values <= spec["max"])), name
        u = (values - spec["min"]) / (spec["max"] - spec["min"])
        assert sorted(strata(u, 5)) == [0, 1, 2, 3, 4], name

"""Statistical properties of the samples: marginals, LHS stratification, Sobol balance, rank
correlation. Fixed seeds throughout, so each assertion either always holds or never does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from sampler_cases import ALL, CHOICE, CHOICE_P, CONTINUOUS, INTEGER
from scipy import stats

from lynx_sampler import core

TUTORIAL = Path(__file__).resolve().parents[2] / "scenarios/aerospace/configs/basic_orbit_tutorial.yaml"
SAMPLING = ("random", "latin_hypercube", "sobol", "halton")


def strata(u: np.ndarray, n: int) -> np.ndarray:
    """Index of the equal-probability stratum (of n) each CDF value falls in."""
    return np.minimum(np.floor(np.asarray(u) * n).astype(int), n - 1)


def assert_one_point_per_stratum(values: list, name: str, n: int) -> None:
    """Every continuous column has exactly one point in each of the n strata of its CDF;
    the discrete ones have each value within 2 of n * p (the bound exact stratification gives)."""
    if name in CONTINUOUS:
        u = CONTINUOUS[name][1].cdf(np.asarray(values))
        assert sorted(strata(u, n)) == list(range(n)), name
        return
    probabilities = CHOICE_P if name == "choice" else {v: 1 / 6 for v in range(-2, 4)}
    for value, p in probabilities.items():
        assert abs(values.count(value) - n * p) < 2, (name, value, values.count(value), n * p)


def tutorial_dispersions() -> list[tuple[str, dict]]:
    document = yaml.safe_load(TUTORIAL.read_text())
    return [(name, d["distribution"]) for name, d in document["dispersions"].items()]


@pytest.fixture(scope="module", params=SAMPLING)
def big_sample(request) -> core.Sample:
    """2000 points of every distribution with one method."""
    return core.sample(ALL, request.param, 2000, seed=20260)


@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_continuous_marginals_pass_kolmogorov_smirnov(big_sample, name):
    column = big_sample.column(big_sample.names.index(name))
    assert stats.kstest(column, CONTINUOUS[name][1].cdf).pvalue > 0.001


def test_integer_uniform_frequencies_pass_chi_square(big_sample):
    values = big_sample.column(big_sample.names.index("integer"))
    counts = [values.count(v) for v in range(INTEGER["min"], INTEGER["max"] + 1)]
    assert sum(counts) == 2000
    assert stats.chisquare(counts).pvalue > 0.001


def test_weighted_choice_frequencies_pass_chi_square(big_sample):
    values = big_sample.column(big_sample.names.index("choice"))
    assert values.count("never") == 0  # weight 0 is never drawn
    observed = [values.count(v) for v in CHOICE["values"][:3]]
    expected = [2000 * CHOICE_P[v] for v in CHOICE["values"][:3]]
    assert sum(observed) == 2000
    assert stats.chisquare(observed, expected).pvalue > 0.001


@pytest.mark.parametrize("runs", [2, 7, 100, 1000])
@pytest.mark.parametrize("seed", [0, 42])
def test_latin_hypercube_has_one_point_per_stratum_for_every_distribution(runs, seed):
    s = core.sample(ALL, "latin_hypercube", runs, seed)
    for j, name in enumerate(s.names):
        assert_one_point_per_stratum(s.column(j), name, runs)


def test_random_method_is_not_stratified():
    s = core.sample([("x", {"type": "uniform", "min": 0.0, "max": 1.0})], "random", 1000, seed=5)
    # 1000 iid draws hitting each of 1000 strata exactly once has probability ~1e-432
    assert len(set(strata(s.codes[:, 0], 1000))) < 1000


@pytest.mark.parametrize("k", [8, 10])
def test_sobol_is_balanced_in_every_dyadic_interval_at_powers_of_two(k):
    n = 2**k
    s = core.sample([(f"u{d}", {"type": "uniform", "min": 0.0, "max": 1.0}) for d in range(6)], "sobol", n, seed=3)
    assert s.warnings == ()
    for d in range(6):
        for j in range(1, k + 1):
            counts = np.bincount(strata(s.codes[:, d], 2**j), minlength=2**j)
            assert np.all(counts == n // 2**j), (d, j)


def test_random_sample_is_not_balanced_like_sobol():
    s = core.sample([("u", {"type": "uniform", "min": 0.0, "max": 1.0})], "random", 1024, seed=3)
    counts = np.bincount(strata(s.codes[:, 0], 64), minlength=64)
    assert not np.all(counts == 16)


TARGET = np.array(
    [
        [1.0, 0.7, -0.4, 0.2],
        [0.7, 1.0, -0.3, 0.0],
        [-0.4, -0.3, 1.0, 0.5],
        [0.2, 0.0, 0.5, 1.0],
    ]
)
CORRELATED = ["uniform", "normal", "lognormal", "beta"]


@pytest.mark.parametrize("method", ["latin_hypercube", "random", "halton"])
def test_correlation_achieves_the_target_spearman_within_0_05(method):
    correlation = {"parameters": CORRELATED, "matrix": TARGET.tolist()}
    s = core.sample(ALL, method, 1000, seed=77, correlation=correlation)
    columns = np.column_stack([s.codes[:, s.names.index(n)] for n in CORRELATED])
    achieved = stats.spearmanr(columns).statistic
    assert np.max(np.abs(achieved - TARGET)) <= 0.05, achieved
    # the parameters left out stay uncorrelated with the correlated ones
    other = s.codes[:, s.names.index("triangular")]
    assert abs(stats.spearmanr(other, columns[:, 0]).statistic) < 0.1


def test_correlation_only_reorders_values_so_lhs_strata_hold():
    correlation = {
        "parameters": ["uniform", "normal", "integer", "exponential"],
        "matrix": [[1, 0.6, 0.3, -0.5], [0.6, 1, 0.2, -0.3], [0.3, 0.2, 1, 0], [-0.5, -0.3, 0, 1]],
    }
    plain = core.sample(ALL, "latin_hypercube", 500, seed=8)
    s = core.sample(ALL, "latin_hypercube", 500, seed=8, correlation=correlation)
    assert s.warnings == ()
    for j, name in enumerate(s.names):
        assert sorted(s.column(j), key=str) == sorted(plain.column(j), key=str), name  # same values...
        assert_one_point_per_stratum(s.column(j), name, 500)
    assert stats.spearmanr(s.codes[:, 0], s.codes[:, 1]).statistic == pytest.approx(0.6, abs=0.05)  # ...new pairing
    assert abs(stats.spearmanr(plain.codes[:, 0], plain.codes[:, 1]).statistic) < 0.1


def test_correlation_with_too_few_points_is_left_out_with_a_warning():
    correlation = {"parameters": ["uniform", "normal"], "matrix": [[1, 0.5], [0.5, 1]]}
    s = core.sample(ALL, "latin_hypercube", 2, seed=1, correlation=correlation)
    assert len(s) == 2
    assert s.warnings == (
        "correlation: 2 points are too few to correlate uniform, normal; they were left uncorrelated",
    )


@pytest.mark.parametrize("method", SAMPLING)
def test_same_seed_reproduces_and_other_seed_differs(method):
    specs = tutorial_dispersions()
    first = core.sample(specs, method, 50, seed=1234).codes
    again = core.sample(specs, method, 50, seed=1234).codes
    other = core.sample(specs, method, 50, seed=1235).codes
    assert np.array_equal(first, again)
    assert not np.any(np.all(first == other, axis=1)), "another seed should give other points"


@pytest.mark.parametrize("method", SAMPLING)
def test_bounded_distributions_stay_within_bounds(method):
    specs = [
        ("tiny", {"type": "uniform", "min": 5.0e-05, "max": 0.002}),
        ("wide", {"type": "uniform", "min": -1e9, "max": 1e9}),
        ("narrow", {"type": "uniform", "min": 0.70, "max": 0.70000001}),
        ("tail", {"type": "truncated_normal", "mean": 0.0, "std": 1.0, "min": 4.0, "max": 4.5}),
        ("tri", {"type": "triangular", "min": 1.0, "mode": 1.0, "max": 2.0}),
        ("beta", {"type": "beta", "alpha": 0.3, "beta": 0.3, "min": -1.0, "max": 1.0}),
        ("exp", {"type": "exponential", "rate": 10.0, "min": 5.0}),
        ("normal", {"type": "normal", "mean": 0.0, "std": 1.0}),
    ]
    s = core.sample(specs, method, 2000, seed=11)
    assert np.all(np.isfinite(s.codes))
    for column, (name, spec) in enumerate(specs):
        values = s.codes[:, column]
        assert values.min() >= spec.get("min", -np.inf), name
        assert values.max() <= spec.get("max", np.inf), name


def test_normal_latin_hypercube_has_requested_moments():
    values = core.sample([("x", {"type": "normal", "mean": 10.0, "std": 2.0})], "latin_hypercube", 2000, seed=8).codes
    assert values.mean() == pytest.approx(10.0, abs=0.05)
    assert values.std() == pytest.approx(2.0, rel=0.02)


def test_tutorial_five_runs_seed_42_cover_five_strata_per_parameter():
    specs = tutorial_dispersions()
    assert len(specs) == 7
    s = core.sample(specs, "latin_hypercube", 5, seed=42)
    assert s.codes.shape == (5, 7)
    for column, (name, spec) in enumerate(specs):
        values = s.codes[:, column]
        assert np.all((values >= spec["min"]) & (values <= spec["max"])), name
        u = (values - spec["min"]) / (spec["max"] - spec["min"])
        assert sorted(strata(u, 5)) == [0, 1, 2, 3, 4], name

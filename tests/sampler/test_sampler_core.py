"""Validation and shape of `lynx_sampler.core`: what a user sees for good and bad dispersion specs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lynx_common.errors import ValidationError
from lynx_sampler import core

UNIFORM = {"type": "uniform", "min": 1.0, "max": 2.0}


def test_columns_follow_declared_order_and_each_distribution():
    params = core.build_parameters(
        [
            ("b_const", {"type": "constant", "value": 7.5}),
            ("a_uniform", {"type": "uniform", "min": -3.0, "max": -1.0}),
            ("c_normal", {"type": "normal", "mean": 1000.0, "std": 1.0}),
        ]
    )
    assert [p.name for p in params] == ["b_const", "a_uniform", "c_normal"]
    points = core.sample(params, "latin_hypercube", 50, seed=3)
    assert points.shape == (50, 3)
    assert np.all(points[:, 0] == 7.5)
    assert np.all((points[:, 1] >= -3.0) & (points[:, 1] <= -1.0))
    # 50 draws of N(1000, 1) all lie far from the other columns' ranges
    assert np.all(np.abs(points[:, 2] - 1000.0) < 6.0)


def test_integer_bounds_are_accepted():
    params = core.build_parameters([("n", {"type": "uniform", "min": 0, "max": 10})])
    points = core.sample(params, "random", 20, seed=1)
    assert np.all((points >= 0) & (points <= 10))


def test_empty_method_defaults_to_latin_hypercube():
    params = core.build_parameters([("x", UNIFORM), ("y", UNIFORM)])
    assert np.array_equal(
        core.sample(params, "", 16, seed=9), core.sample(params, "latin_hypercube", 16, seed=9)
    )


def test_single_run_is_allowed():
    params = core.build_parameters([("x", UNIFORM)])
    points = core.sample(params, "latin_hypercube", 1, seed=0)
    assert points.shape == (1, 1)
    assert 1.0 <= points[0, 0] <= 2.0


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"type": "uniform", "min": 1.0, "max": 1.0}, "dispersions.eccentricity.distribution.max"),
        ({"type": "uniform", "min": 2.0, "max": 1.0}, "dispersions.eccentricity.distribution.max"),
        ({"type": "uniform", "max": 1.0}, "dispersions.eccentricity.distribution.min"),
        ({"type": "uniform", "min": 0.0}, "dispersions.eccentricity.distribution.max"),
        ({"type": "uniform", "min": math.nan, "max": 1.0}, "dispersions.eccentricity.distribution.min"),
        ({"type": "uniform", "min": 0.0, "max": math.inf}, "dispersions.eccentricity.distribution.max"),
        ({"type": "uniform", "min": "0", "max": 1.0}, "dispersions.eccentricity.distribution.min"),
        ({"type": "uniform", "min": True, "max": 2.0}, "dispersions.eccentricity.distribution.min"),
        ({"type": "normal", "mean": 0.0, "std": 0.0}, "dispersions.eccentricity.distribution.std"),
        ({"type": "normal", "mean": 0.0, "std": -1.0}, "dispersions.eccentricity.distribution.std"),
        ({"type": "normal", "std": 1.0}, "dispersions.eccentricity.distribution.mean"),
        ({"type": "constant"}, "dispersions.eccentricity.distribution.value"),
        ({"type": "lognormal", "mean": 0.0, "std": 1.0}, "dispersions.eccentricity.distribution.type"),
        ({"min": 0.0, "max": 1.0}, "dispersions.eccentricity.distribution.type"),
    ],
)
def test_bad_distribution_names_the_offending_field(spec, field):
    with pytest.raises(ValidationError) as err:
        core.build_parameters([("eccentricity", spec)])
    assert err.value.field == field
    assert field in str(err.value)


def test_no_dispersions_is_rejected():
    with pytest.raises(ValidationError) as err:
        core.build_parameters([])
    assert err.value.field == "dispersions"


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_parameter_name_is_rejected(name):
    with pytest.raises(ValidationError) as err:
        core.build_parameters([(name, UNIFORM)])
    assert err.value.field == "dispersions"


def test_duplicate_parameter_name_is_rejected():
    with pytest.raises(ValidationError) as err:
        core.build_parameters([("x", UNIFORM), ("y", UNIFORM), ("x", UNIFORM)])
    assert err.value.field == "dispersions.x"


@pytest.mark.parametrize(
    ("method", "runs", "seed", "field"),
    [
        ("sobol", 5, 1, "monte_carlo.sampling_method"),
        ("LATIN_HYPERCUBE", 5, 1, "monte_carlo.sampling_method"),
        ("random", 0, 1, "monte_carlo.runs"),
        ("random", -4, 1, "monte_carlo.runs"),
        ("random", core.MAX_RUNS + 1, 1, "monte_carlo.runs"),
        ("random", 5, -1, "monte_carlo.seed"),
    ],
)
def test_bad_sampling_settings_name_the_field(method, runs, seed, field):
    params = core.build_parameters([("x", UNIFORM)])
    with pytest.raises(ValidationError) as err:
        core.sample(params, method, runs, seed)
    assert err.value.field == field

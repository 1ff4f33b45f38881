"""Validation and shape of `lynx_sampler.core`: what a user sees for good and bad dispersion specs."""

from __future__ import annotations

import numpy as np
import pytest
from sampler_cases import ALL, CHOICE, ERRORS, INTEGER, with_defaults

from lynx_common.errors import ValidationError
from lynx_sampler import core

UNIFORM = {"type": "uniform", "min": 1.0, "max": 2.0}


def test_columns_follow_declared_order_and_each_distribution():
    s = core.sample(
        [
            ("b_const", {"type": "constant", "value": 7.5}),
            ("a_uniform", {"type": "uniform", "min": -3.0, "max": -1.0}),
            ("c_normal", {"type": "normal", "mean": 1000.0, "std": 1.0}),
        ],
        "latin_hypercube",
        50,
        seed=3,
    )
    assert s.names == ["b_const", "a_uniform", "c_normal"]
    assert s.codes.shape == (50, 3)
    assert s.column(0) == [7.5] * 50
    assert all(-3.0 <= v <= -1.0 for v in s.column(1))
    # 50 draws of N(1000, 1) all lie far from the other columns' ranges
    assert all(abs(v - 1000.0) < 6.0 for v in s.column(2))


def test_values_have_the_types_a_run_config_carries():
    s = core.sample(ALL + [("k", {"type": "constant", "value": 2.0})], "random", 200, seed=4)
    rows = s.rows()
    assert len(rows) == 200 and list(rows[0]) == s.names
    assert all(type(r["integer"]) is int and -2 <= r["integer"] <= 3 for r in rows)
    assert {r["integer"] for r in rows} == set(range(-2, 4))
    assert {r["choice"] for r in rows} <= set(CHOICE["values"]) - {"never"}
    assert any(type(r["choice"]) is str for r in rows) and any(r["choice"] == 2.5 for r in rows)
    assert all(type(r["normal"]) is float for r in rows)
    assert all(r["k"] == 2.0 for r in rows)


def test_integer_bounds_are_accepted():
    s = core.sample([("n", {"type": "uniform", "min": 0, "max": 10})], "random", 20, seed=1)
    assert np.all((s.codes >= 0) & (s.codes <= 10))


def test_integer_uniform_single_value_and_choice_single_value():
    s = core.sample(
        [("n", {"type": "integer_uniform", "min": 4, "max": 4}), ("c", {"type": "choice", "values": ["only"]})],
        "latin_hypercube",
        5,
        seed=1,
    )
    assert s.column(0) == [4] * 5 and s.column(1) == ["only"] * 5


def test_beta_defaults_to_the_unit_interval_and_exponential_to_zero_shift():
    s = core.sample(
        [("b", {"type": "beta", "alpha": 0.5, "beta": 0.5}), ("x", {"type": "exponential", "rate": 3.0})],
        "random",
        500,
        seed=2,
    )
    assert 0.0 <= min(s.column(0)) and max(s.column(0)) <= 1.0
    assert min(s.column(1)) >= 0.0


def test_empty_method_defaults_to_latin_hypercube():
    specs = [("x", UNIFORM), ("y", UNIFORM)]
    assert np.array_equal(
        core.sample(specs, "", 16, seed=9).codes, core.sample(specs, "latin_hypercube", 16, seed=9).codes
    )


def test_single_run_is_allowed():
    s = core.sample([("x", UNIFORM)], "latin_hypercube", 1, seed=0)
    assert s.codes.shape == (1, 1) and 1.0 <= s.codes[0, 0] <= 2.0


def test_sobol_warns_when_runs_is_not_a_power_of_two():
    assert core.sample([("x", UNIFORM)], "sobol", 1024, seed=0).warnings == ()
    (warning,) = core.sample([("x", UNIFORM)], "sobol", 1000, seed=0).warnings
    assert warning.startswith("sobol: 1000 runs is not a power of two") and "1024" in warning


def test_grid_is_the_full_factorial_of_levels():
    s = core.sample(
        [
            ("u", {"type": "uniform", "min": 0.0, "max": 1.0, "levels": 4}),
            ("c", {"type": "choice", "values": ["lo", "hi"]}),
            ("k", {"type": "constant", "value": 9.0}),
            ("n", INTEGER),
        ],
        "grid",
        runs=0,
    )
    assert len(s) == 4 * 2 * 1 * 6 and s.warnings == ()
    rows = s.rows()
    combos = {(r["u"], r["c"], r["k"], r["n"]) for r in rows}
    assert len(combos) == len(rows)
    assert sorted({r["u"] for r in rows}) == [0.125, 0.375, 0.625, 0.875]  # ppf at (i + 0.5) / levels
    assert {r["c"] for r in rows} == {"lo", "hi"} and {r["n"] for r in rows} == set(range(-2, 4))
    assert rows[0] == {"u": 0.125, "c": "lo", "k": 9.0, "n": -2} and rows[1]["n"] == -1  # last varies fastest


def test_grid_of_a_normal_puts_levels_at_quantile_midpoints():
    s = core.sample([("n", {"type": "normal", "mean": 10.0, "std": 2.0, "levels": 3})], "grid", runs=0)
    assert s.column(0) == pytest.approx([10.0 - 2.0 * 0.9674215661017, 10.0, 10.0 + 2.0 * 0.9674215661017])


def test_grid_warns_when_runs_differs_from_its_size():
    (warning,) = core.sample(
        [("u", {**UNIFORM, "levels": 3}), ("v", {**UNIFORM, "levels": 2})], "grid", runs=10
    ).warnings
    assert warning == "grid: runs (10) is ignored; the grid has 6 points (3 x 2 levels)"
    assert core.sample([("u", {**UNIFORM, "levels": 3})], "grid", runs=3).warnings == ()


def test_random_cd_optimization_keeps_latin_hypercube_strata():
    s = core.sample(
        [("x", UNIFORM), ("y", UNIFORM), ("z", UNIFORM)], "latin_hypercube", 40, seed=5, optimization="random-cd"
    )
    plain = core.sample([("x", UNIFORM), ("y", UNIFORM), ("z", UNIFORM)], "latin_hypercube", 40, seed=5)
    assert not np.array_equal(s.codes, plain.codes)
    for j in range(3):
        assert sorted(np.floor((s.codes[:, j] - 1.0) * 40).astype(int)) == list(range(40))


@pytest.mark.parametrize(("dispersions", "options", "field"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_bad_request_names_the_offending_field(dispersions, options, field):
    with pytest.raises(ValidationError) as err:
        core.plan(dispersions, **with_defaults(options))
    assert err.value.field == field
    assert str(err.value).startswith(field + " ")
    assert len(err.value.problem) > 10


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"type": "uniform", "min": 2.0, "max": 1.0}, "must be greater than min (1.0 <= 2.0)"),
        ({"type": "normal", "mean": 0.0, "std": 1.0, "mode": 1.0}, "does not apply to normal (its fields: mean, std)"),
        ({"type": "uniform", "max": 1.0}, "is required"),
        ({"type": "gamma"}, "unknown distribution 'gamma' (expected one of uniform, normal, truncated_normal"),
    ],
)
def test_problems_read_clearly(spec, problem):
    with pytest.raises(ValidationError) as err:
        core.plan([("eccentricity", spec)], runs=5)
    assert problem in str(err.value)
    assert str(err.value).startswith("dispersions.eccentricity.distribution.")


def test_lhs_extension_error_says_which_totals_are_allowed():
    with pytest.raises(ValidationError) as err:
        core.plan([("x", UNIFORM)], runs=15, existing_runs=10)
    assert "totals 20, 30, 40" in err.value.problem

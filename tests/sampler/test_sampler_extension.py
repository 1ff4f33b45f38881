"""Extending a batch (`existing_runs`): what holds for each method, and reproducibility across
processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sampler_cases import ALL, CONTINUOUS, snapshot
from scipy import stats
from test_sampler_statistics import assert_one_point_per_stratum

from lynx_sampler import core

CORRELATION = {"parameters": ["uniform", "normal", "integer"], "matrix": [[1, 0.5, -0.3], [0.5, 1, 0], [-0.3, 0, 1]]}


@pytest.mark.parametrize("method", ["random", "sobol", "halton"])
def test_continuation_equals_the_slice_of_one_larger_sample(method):
    whole = core.sample(ALL, method, 100, seed=31)
    first = core.sample(ALL, method, 60, seed=31)
    rest = core.sample(ALL, method, 40, seed=31, existing_runs=60)
    assert rest.first_run_id == 60 and rest.run_ids == list(range(60, 100))
    assert np.array_equal(first.codes, whole.codes[:60])  # the prefix is unchanged
    assert np.array_equal(rest.codes, whole.codes[60:])
    assert rest.rows() == whole.rows(60, 100)


@pytest.mark.parametrize("method", ["random", "sobol", "halton"])
def test_extending_in_several_steps_equals_extending_in_one(method):
    one_step = core.sample(ALL, method, 90, seed=5, existing_runs=10)
    steps = [core.sample(ALL, method, 30, seed=5, existing_runs=start) for start in (10, 40, 70)]
    assert np.array_equal(np.vstack([s.codes for s in steps]), one_step.codes)


def test_sobol_extension_warns_about_the_total():
    assert core.sample(ALL, "sobol", 512, seed=1, existing_runs=512).warnings == ()
    (warning,) = core.sample(ALL, "sobol", 500, seed=1, existing_runs=512).warnings
    assert warning.startswith("sobol: 512 existing + 500 new = 1012 runs is not a power of two")


def test_correlated_random_extension_keeps_the_slice_values_and_correlates_the_new_points():
    whole = core.sample(ALL, "random", 600, seed=9)
    rest = core.sample(ALL, "random", 500, seed=9, existing_runs=100, correlation=CORRELATION)
    for j in range(len(ALL)):
        assert np.array_equal(np.sort(rest.codes[:, j]), np.sort(whole.codes[100:, j]))  # only the pairing changes
    assert stats.spearmanr(rest.codes[:, 0], rest.codes[:, 1]).statistic == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize(("existing", "runs"), [(1, 1), (7, 21), (50, 150), (100, 100)])
@pytest.mark.parametrize("correlation", [None, CORRELATION])
def test_latin_hypercube_extension_puts_one_point_in_each_stratum_of_the_refined_grid(existing, runs, correlation):
    options = {"correlation": correlation} if correlation and existing > 3 else {}
    original = core.sample(ALL, "latin_hypercube", existing, seed=12, **options)
    added = core.sample(ALL, "latin_hypercube", runs, seed=12, existing_runs=existing, **options)
    assert added.run_ids == list(range(existing, existing + runs))
    total = existing + runs
    for j, name in enumerate(original.names):
        assert_one_point_per_stratum(original.column(j) + added.column(j), name, total)
        if name in CONTINUOUS:  # the new points alone are not a latin hypercube of `runs` points...
            assert_one_point_per_stratum(original.column(j), name, existing)  # ...but the original still is


def test_latin_hypercube_extension_of_an_optimized_design_refines_the_optimized_points():
    specs = [("a", CONTINUOUS["uniform"][0]), ("b", CONTINUOUS["normal"][0])]
    original = core.sample(specs, "latin_hypercube", 30, seed=4, optimization="random-cd")
    added = core.sample(specs, "latin_hypercube", 60, seed=4, optimization="random-cd", existing_runs=30)
    for j, name in enumerate(["uniform", "normal"]):
        assert_one_point_per_stratum(original.column(j) + added.column(j), name, 90)


def test_extension_is_not_a_fresh_sample_of_the_same_size():
    # The refinement depends on the existing points: it differs from an unrelated design.
    added = core.sample(ALL, "latin_hypercube", 50, seed=12, existing_runs=50)
    fresh = core.sample(ALL, "latin_hypercube", 50, seed=12)
    assert not np.array_equal(added.codes, fresh.codes)


SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from sampler_cases import snapshot
print(json.dumps(snapshot()))
"""


def test_another_process_produces_identical_run_configurations():
    code = SCRIPT.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout)
    here = json.loads(json.dumps(snapshot()))
    assert there == here
    assert set(here) == {"random", "latin_hypercube", "sobol", "halton", "grid"}
    assert len(here["latin_hypercube"][0]) == 64 and here["latin_hypercube"][0][0]["choice"] in ("a", 2.5, "c")

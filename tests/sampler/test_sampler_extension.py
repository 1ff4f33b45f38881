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
from lynx_sampler import core
from sampler_cases import ALL, CONTINUOUS
from scipy import stats
from test_sampler_statistics import assert_one_point_per_stratum

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
import hashlib, json, sys
from lynx_sampler import core, encoding
sys.path.insert(0, {tests!r})
from sampler_cases import ALL
out = {{}}
corr = {{"parameters": ["uniform", "normal", "lognormal"], "matrix": [[1, 0.4, -0.2], [0.4, 1, 0.1], [-0.2, 0.1, 1]]}}
for method in ("random", "latin_hypercube", "sobol", "halton"):
    s = core.sample(ALL, method, 64, seed=2024, correlation=corr)
    e = core.sample(ALL, method, 64, seed=2024, existing_runs=64)
    chunks = b"".join(encoding.encoded_chunks(s, 2024, 25))
    out[method] = [s.rows(), e.rows(), hashlib.sha256(chunks).hexdigest()]
print(json.dumps(out))
"""


def start_subprocess(hash_seed: str) -> subprocess.Popen:
    """A fresh interpreter (with its own hash seed) printing the sampler's output as JSON."""
    code = SCRIPT.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)


def test_two_processes_produce_identical_run_configurations():
    processes = [start_subprocess("1"), start_subprocess("2")]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    first, second = (json.loads(o) for o in outputs)
    assert first == second
    here = core.sample(ALL, "sobol", 64, seed=2024, existing_runs=64).rows()
    assert first["sobol"][1] == json.loads(json.dumps(here))
    assert len(first["latin_hypercube"][0]) == 64 and first["latin_hypercube"][0][0]["choice"] in ("a", 2.5, "c")

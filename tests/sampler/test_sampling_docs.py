"""Every YAML example on docs/batch-config.md (the batch config and sampling page) is a request the sampler accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lynx_sampler import core

PAGE = Path(__file__).resolve().parents[2] / "docs" / "batch-config.md"
DEFAULT_DISPERSIONS = {
    "mass_kg": {"distribution": {"type": "normal", "mean": 100, "std": 2}},
    "thrust_n": {"distribution": {"type": "uniform", "min": 490, "max": 510}},
}


def examples() -> list[dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), flags=re.S)
    return [yaml.safe_load(block) for block in blocks]


def test_the_doc_has_an_example_of_every_distribution_and_method():
    documents = examples()
    types = {d["distribution"]["type"] for doc in documents for d in doc.get("dispersions", {}).values()}
    methods = {doc["monte_carlo"].get("sampling_method") for doc in documents if "monte_carlo" in doc}
    assert types == {
        "uniform",
        "normal",
        "truncated_normal",
        "lognormal",
        "triangular",
        "beta",
        "exponential",
        "integer_uniform",
        "choice",
        "constant",
    }
    assert methods >= {"latin_hypercube", "random", "sobol", "halton", "grid"}


@pytest.mark.parametrize("document", examples())
def test_doc_example_samples(document):
    mc = document.get("monte_carlo", {})
    dispersions = document.get("dispersions", DEFAULT_DISPERSIONS)
    correlation = mc.get("correlation")
    if correlation and not set(correlation["parameters"]) <= set(dispersions):
        dispersions = {**dispersions, **{p: DEFAULT_DISPERSIONS["mass_kg"] for p in correlation["parameters"]}}
    specs = [(name, d["distribution"]) for name, d in dispersions.items()]
    runs = mc.get("runs", 10)
    if mc.get("optimization"):
        runs = min(runs, 64)  # random-cd at 1,000 runs takes seconds; its validity does not depend on runs
    s = core.sample(
        specs,
        mc.get("sampling_method", ""),
        runs,
        mc.get("seed", 0),
        optimization=mc.get("optimization", ""),
        correlation=correlation,
    )
    assert len(s) == runs or mc.get("sampling_method") == "grid"


def test_grid_example_has_the_documented_points():
    (grid,) = [d for d in examples() if d.get("monte_carlo", {}).get("sampling_method") == "grid"]
    specs = [(name, d["distribution"]) for name, d in grid["dispersions"].items()]
    s = core.sample(specs, "grid", 0, 7)
    assert len(s) == 18
    assert sorted({round(v, 2) for v in s.column(0)}) == [98.07, 100.0, 101.93]

"""The offline preview (`lynx preview` without a stack): the gateway's answer, sampled in process."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import grpc
import pytest
import yaml

from lynx.sampler.v1 import sampler_service_pb2 as pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as pb_grpc
from lynx_common.columns import rows
from lynx_common.errors import ValidationError
from lynx_common.run_config import run_config
from lynx_sampler.preview import config_message, preview
from lynx_sampler.server import build_server

pytestmark = pytest.mark.timeout(60)

TUTORIAL = Path(__file__).resolve().parents[2] / "scenarios/aerospace/configs/basic_orbit_tutorial.yaml"
CONFIG = {
    "simulation": {"name": "Orbit", "version": "2.1", "duration_minutes": 90, "engine": "command", "type": "orbit"},
    "monte_carlo": {"runs": 40, "seed": 1234},
    "dispersions": {
        "eccentricity": {"distribution": {"type": "uniform", "min": 0.0, "max": 0.01}, "units": "-"},
        "panels": {"distribution": {"type": "integer_uniform", "min": 1, "max": 4}},
        "mode": {"distribution": {"type": "choice", "values": ["safe", "nominal"], "weights": [1, 3]}},
        "wheels": {"distribution": {"type": "choice", "values": [3, 4]}},
        "gain": {"distribution": {"type": "choice", "values": ["off", 0.5]}},
        "mass_kg": {"distribution": {"type": "constant", "value": 100}},
    },
}


def with_changes(**paths) -> dict:
    """CONFIG with dotted paths (a__b for a.b) replaced."""
    config = copy.deepcopy(CONFIG)
    for path, value in paths.items():
        *parents, leaf = path.split("__")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return config


def test_run_configs_keep_their_types_and_the_tutorial_shape():
    answer = preview(CONFIG)
    assert set(answer) == {"seed", "total_runs", "warnings", "run_configs"}
    assert answer["seed"] == 1234 and answer["total_runs"] == 40 and answer["warnings"] == []
    docs = answer["run_configs"]
    assert [d["run_id"] for d in docs] == list(range(40))
    params = [d["parameters"] for d in docs]
    assert list(params[0]) == ["eccentricity", "panels", "mode", "wheels", "gain", "mass_kg"]  # declared order
    assert {type(p["panels"]) for p in params} == {int} and {p["panels"] for p in params} == {1, 2, 3, 4}
    assert {type(p["mode"]) for p in params} == {str} and {p["mode"] for p in params} == {"safe", "nominal"}
    assert {type(p["wheels"]) for p in params} == {int}  # a choice of whole numbers is an integer
    assert {p["gain"] for p in params} == {"off", 0.5}
    assert {p["mass_kg"] for p in params} == {100.0}
    assert all(0.0 <= p["eccentricity"] <= 0.01 for p in params)
    assert sorted(set(re.findall(r'"panels": ([0-9.]+)', json.dumps(docs)))) == ["1", "2", "3", "4"]  # not 1.0
    metadata = docs[7]["metadata"]
    assert metadata["simulation_name"] == "Orbit" and metadata["simulation_version"] == "2.1"
    assert metadata["duration_minutes"] == 90.0 and metadata["sampling_method"] == "latin_hypercube"
    assert metadata["batch_seed"] == 1234 and "batch_id" not in metadata and "job_id" not in metadata
    assert len({d["metadata"]["seed"] for d in docs}) == 40


@pytest.fixture
async def sampler():
    server = build_server("127.0.0.1", 0)
    await server.start()
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield pb_grpc.SamplerServiceStub(channel)
    await server.stop(0)


async def test_the_same_run_configs_as_the_sampler_stream_gives_the_gateway(sampler):
    """What the scheduler builds from the gRPC stream for the same config and seed, byte for byte."""
    config = yaml.safe_load(TUTORIAL.read_text())
    config["dispersions"].update(CONFIG["dispersions"])
    answer = preview(config, runs_override=300, limit=250)
    message = config_message(config)
    mc = message.monte_carlo
    request = pb.SampleRequest(
        dispersions=message.dispersions,
        sampling_method=mc.sampling_method,
        runs=300,
        seed=mc.seed,
        optimization=mc.optimization,
        correlation=mc.correlation,
    )
    chunks = [r async for r in sampler.Sample(request, timeout=30)]
    assert answer["total_runs"] == chunks[0].total_runs == 300
    generated_at = answer["run_configs"][0]["metadata"]["generated_at"]
    sim = message.simulation
    streamed = [
        run_config(
            run_id,
            params,
            simulation_name=sim.name,
            simulation_version=sim.version,
            duration_minutes=sim.duration_minutes,
            sampling_method=mc.sampling_method,
            generated_at=0,
            ids={"batch_seed": mc.seed, "seed": seed},
        )
        for chunk in chunks
        for run_id, seed, params in rows(chunk.runs)
    ][:250]
    for doc in streamed:
        doc["metadata"]["generated_at"] = generated_at
    assert json.dumps(answer["run_configs"]) == json.dumps(streamed)


def test_a_seed_is_chosen_when_the_config_has_none_and_reproduces_the_preview():
    config = with_changes(monte_carlo={"runs": 5})
    first, second = preview(config), preview(config)
    assert first["seed"] != second["seed"] and 0 <= first["seed"] < 2**52
    again = preview(with_changes(monte_carlo={"runs": 5, "seed": first["seed"]}))
    assert [d["parameters"] for d in again["run_configs"]] == [d["parameters"] for d in first["run_configs"]]
    assert [d["metadata"]["seed"] for d in again["run_configs"]] == [
        d["metadata"]["seed"] for d in first["run_configs"]
    ]


def test_limit_and_runs_override():
    answer = preview(CONFIG, runs_override=1000, limit=3)
    assert answer["total_runs"] == 1000 and [d["run_id"] for d in answer["run_configs"]] == [0, 1, 2]
    whole = preview(CONFIG, runs_override=1000)["run_configs"]
    assert [d["parameters"] for d in answer["run_configs"]] == [d["parameters"] for d in whole[:3]]


def test_grid_ignores_runs_with_a_warning():
    config = {
        "monte_carlo": {"runs": 5, "sampling_method": "grid", "seed": 1},
        "dispersions": {
            "u": {"distribution": {"type": "uniform", "min": 0, "max": 1, "levels": 2}},
            "c": {"distribution": {"type": "choice", "values": ["a", "b", "c"]}},
        },
    }
    answer = preview(config)
    assert answer["total_runs"] == 6
    assert answer["warnings"] == ["grid: runs (5) is ignored; the grid has 6 points (2 x 3 levels)"]
    assert [(d["parameters"]["u"], d["parameters"]["c"]) for d in answer["run_configs"]] == [
        (u, c) for u in (0.25, 0.75) for c in "abc"
    ]


@pytest.mark.parametrize(
    ("config", "options", "field"),
    [
        (
            with_changes(dispersions__eccentricity={"distribution": {"type": "uniform", "min": 1, "max": 0}}),
            {},
            "dispersions.eccentricity.distribution.max",
        ),
        (with_changes(monte_carlo__runs=0), {}, "config.monte_carlo.runs"),
        (with_changes(monte_carlo__seed=2**53), {}, "monte_carlo.seed"),
        (with_changes(monte_carlo__sampling_method="lhs"), {}, "monte_carlo.sampling_method"),
        (with_changes(monte_carlo__optimization="best"), {}, "monte_carlo.optimization"),
        (
            with_changes(monte_carlo__correlation={"parameters": ["eccentricity", "nope"], "matrix": [[1, 0], [0, 1]]}),
            {},
            "monte_carlo.correlation.parameters",
        ),
        (
            with_changes(dispersions__mode={"distribution": {"type": "choice", "values": []}}),
            {},
            "dispersions.mode.distribution.values",
        ),
        (with_changes(dispersions__mode={"distribution": {"type": "gauss"}}), {}, "dispersions.mode.distribution.type"),
        (with_changes(dispersions__mode={"units": "m"}), {}, "config.dispersions.mode.distribution"),
        (with_changes(simulation__nmae="x"), {}, "config.simulation.nmae"),
        ({"monte_carlo": {"runs": 3}}, {}, "config.dispersions"),
        (CONFIG, {"limit": -1}, "limit"),
        (CONFIG, {"runs_override": -2}, "runs_override"),
    ],
)
def test_bad_input_names_the_field_as_the_gateway_does(config, options, field):
    with pytest.raises(ValidationError) as err:
        preview(config, **options)
    assert err.value.field == field

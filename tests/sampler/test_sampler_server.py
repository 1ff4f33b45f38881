"""Contract tests of the SamplerService against a real grpc.aio server on port 0."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.sampler.v1 import sampler_service_pb2 as pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as pb_grpc
from lynx_sampler import core
from lynx_sampler.server import build_server

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def channel():
    server = build_server("127.0.0.1", 0)
    await server.start()
    assert server.address.startswith("127.0.0.1:")
    async with grpc.aio.insecure_channel(server.address) as ch:
        yield ch
    await server.stop(0)


def uniform(name: str, lo: float, hi: float) -> cfg.Dispersion:
    distribution = cfg.Distribution(type="uniform", min=lo, max=hi)
    return cfg.Dispersion(name=name, distribution=distribution, units="m")


async def sample_all(channel, request: pb.SampleRequest) -> list[list[pb.ParameterSet]]:
    stub = pb_grpc.SamplerServiceStub(channel)
    return [list(r.parameter_sets) async for r in stub.Sample(request, timeout=20)]


async def test_streams_every_run_in_order_with_declared_parameters(channel):
    request = pb.SampleRequest(
        dispersions=[
            uniform("semi_major_axis_m", 6.95e6, 7.05e6),
            cfg.Dispersion(name="mass_kg", distribution=cfg.Distribution(type="normal", mean=100.0, std=2.0)),
            cfg.Dispersion(name="zero", distribution=cfg.Distribution(type="constant", value=0.0)),
        ],
        sampling_method="latin_hypercube",
        runs=5,
        seed=42,
    )
    chunks = await sample_all(channel, request)
    sets = [s for chunk in chunks for s in chunk]
    assert [s.run_id for s in sets] == [0, 1, 2, 3, 4]
    expected = core.sample(
        core.build_parameters(
            [
                ("semi_major_axis_m", {"type": "uniform", "min": 6.95e6, "max": 7.05e6}),
                ("mass_kg", {"type": "normal", "mean": 100.0, "std": 2.0}),
                ("zero", {"type": "constant", "value": 0.0}),
            ]
        ),
        "latin_hypercube",
        5,
        42,
    )
    for s, row in zip(sets, expected, strict=True):
        assert set(s.parameters.keys()) == {"semi_major_axis_m", "mass_kg", "zero"}
        assert s.parameters["semi_major_axis_m"] == row[0]
        assert s.parameters["mass_kg"] == row[1]
        assert s.parameters["zero"] == 0.0
    # the same request gives the same points
    again = [s for chunk in await sample_all(channel, request) for s in chunk]
    assert [dict(s.parameters) for s in again] == [dict(s.parameters) for s in sets]


async def test_large_sample_arrives_in_chunks_of_1000(channel):
    request = pb.SampleRequest(dispersions=[uniform("x", 0.0, 1.0)], runs=2500, seed=7)
    chunks = await sample_all(channel, request)
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    sets = [s for chunk in chunks for s in chunk]
    assert [s.run_id for s in sets] == list(range(2500))
    values = np.array([s.parameters["x"] for s in sets])
    # empty sampling_method means latin_hypercube: one point per stratum
    assert sorted(np.floor(values * 2500).astype(int)) == list(range(2500))


def dist(name: str, **distribution) -> cfg.Dispersion:
    return cfg.Dispersion(name=name, distribution=cfg.Distribution(**distribution))


X = uniform("x", 0.0, 1.0)


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        (
            {"dispersions": [uniform("eccentricity", 0.002, 5e-5)], "runs": 5},
            "dispersions.eccentricity.distribution.max",
        ),
        ({"dispersions": [dist("e", type="uniform", max=1.0)], "runs": 5}, "dispersions.e.distribution.min"),
        ({"dispersions": [dist("e", type="beta", min=0.0, max=1.0)], "runs": 5}, "dispersions.e.distribution.type"),
        ({"dispersions": [dist("e", type="normal", mean=1.0, std=0.0)], "runs": 5}, "dispersions.e.distribution.std"),
        ({"dispersions": [], "runs": 5}, "dispersions"),
        ({"dispersions": [X, X], "runs": 5}, "dispersions.x"),
        ({"dispersions": [X], "runs": 0}, "monte_carlo.runs"),
        ({"dispersions": [X], "runs": 5, "sampling_method": "sobol"}, "monte_carlo.sampling_method"),
        ({"dispersions": [X], "runs": 5, "seed": -1}, "monte_carlo.seed"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(channel, request_kwargs, field):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sample_all(channel, pb.SampleRequest(**request_kwargs))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(field + " ")


async def test_zero_bound_is_a_set_value_not_a_missing_one(channel):
    # min=0.0 is explicitly set (optional field): it must not be reported as missing
    request = pb.SampleRequest(dispersions=[uniform("x", 0.0, 1.0)], runs=3, seed=1)
    sets = [s for chunk in await sample_all(channel, request) for s in chunk]
    assert len(sets) == 3
    assert all(0.0 <= s.parameters["x"] <= 1.0 for s in sets)


async def test_health_reports_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    overall = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert overall.status == health_pb2.HealthCheckResponse.SERVING
    request = health_pb2.HealthCheckRequest(service="lynx.sampler.v1.SamplerService")
    sampler = await stub.Check(request, timeout=5)
    assert sampler.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_sampler_service(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    call = stub.ServerReflectionInfo(iter([request]), timeout=5)
    responses = [r async for r in call]
    assert len(responses) == 1
    names = {s.name for s in responses[0].list_services_response.service}
    assert "lynx.sampler.v1.SamplerService" in names
    assert "grpc.health.v1.Health" in names


async def test_reflection_describes_the_sample_method(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol="lynx.sampler.v1.SamplerService")]),
        timeout=5,
    )
    responses = [r async for r in call]
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in responses[0].file_descriptor_response.file_descriptor_proto
    ]
    services = {(f.package, s.name): [m.name for m in s.method] for f in files for s in f.service}
    assert services[("lynx.sampler.v1", "SamplerService")] == ["Sample"]

"""Contract tests of the SamplerService against a real grpc.aio server on 127.0.0.1."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sampler_cases import ALL, ERRORS, to_request
from scipy import stats

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.sampler.v1 import sampler_service_pb2 as pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as pb_grpc
from lynx_common.columns import column_values, rows
from lynx_common.status import field_violations
from lynx_sampler import core
from lynx_sampler.seeds import run_seed
from lynx_sampler.server import build_server

pytestmark = pytest.mark.timeout(60)


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


async def responses(channel, request: pb.SampleRequest) -> list[pb.SampleResponse]:
    stub = pb_grpc.SamplerServiceStub(channel)
    return [r async for r in stub.Sample(request, timeout=30)]


async def sample_all(channel, request: pb.SampleRequest) -> list[tuple[int, int, dict]]:
    """(run_id, seed, parameters) of every run of the answer."""
    return [row for r in await responses(channel, request) for row in rows(r.runs)]


def parameters(runs: list[tuple[int, int, dict]]) -> list[dict]:
    return [p for _, _, p in runs]


async def test_streams_every_run_in_order_with_declared_parameters_and_seeds(channel):
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
    (only,) = await responses(channel, request)
    assert only.total_runs == 5 and list(only.warnings) == []
    runs = only.runs
    assert list(runs.run_ids) == [0, 1, 2, 3, 4]
    assert list(runs.seeds) == [run_seed(42, i) for i in range(5)]
    assert [c.name for c in runs.parameters] == ["semi_major_axis_m", "mass_kg", "zero"]
    assert [c.WhichOneof("values") for c in runs.parameters] == ["numbers"] * 3
    expected = core.sample(
        [
            ("semi_major_axis_m", {"type": "uniform", "min": 6.95e6, "max": 7.05e6}),
            ("mass_kg", {"type": "normal", "mean": 100.0, "std": 2.0}),
            ("zero", {"type": "constant", "value": 0.0}),
        ],
        "latin_hypercube",
        5,
        42,
    )
    assert list(runs.parameters[0].numbers.values) == expected.codes[:, 0].tolist()
    assert list(runs.parameters[1].numbers.values) == expected.codes[:, 1].tolist()
    assert list(runs.parameters[2].numbers.values) == [0.0] * 5
    # the same request gives the same points
    assert await sample_all(channel, request) == rows(runs)


async def test_integers_stay_integers_and_strings_stay_strings_on_the_wire(channel):
    specs = [
        ("n", {"type": "integer_uniform", "min": -3, "max": 2**40}),
        ("mode", {"type": "choice", "values": ["safe", "nominal"]}),
        ("panels", {"type": "choice", "values": [2, 4, 6]}),  # whole numbers: integers
        ("gain", {"type": "choice", "values": [0.5, 1, 2]}),  # not all whole: real numbers
        ("mixed", {"type": "choice", "values": ["off", 3, 1.5]}),
    ]
    (only,) = await responses(channel, to_request(specs, {"method": "random", "runs": 400, "seed": 9}))
    kinds = {c.name: c.WhichOneof("values") for c in only.runs.parameters}
    assert kinds == {"n": "integers", "mode": "texts", "panels": "integers", "gain": "numbers", "mixed": "choices"}
    columns = {c.name: c for c in only.runs.parameters}
    assert set(columns["panels"].integers.values) == {2, 4, 6}
    assert set(columns["mode"].texts.values) == {"safe", "nominal"}
    assert all(-3 <= v <= 2**40 for v in columns["n"].integers.values)
    assert max(columns["n"].integers.values) > 2**39  # large integers arrive whole
    levels = [level.WhichOneof("kind") for level in columns["mixed"].choices.levels]
    assert levels == ["text", "number", "number"]  # 1.5 is not whole, so 3 is a real number too
    assert set(columns["mixed"].choices.indices) == {0, 1, 2}
    points = parameters(rows(only.runs))
    assert {type(p["n"]) for p in points} == {int} and {type(p["gain"]) for p in points} == {float}
    assert {p["mixed"] for p in points} == {"off", 3.0, 1.5}
    assert points == core.sample(specs, "random", 400, 9).rows()


async def test_large_sample_arrives_in_chunks_of_ten_thousand_with_the_total_first(channel):
    request = pb.SampleRequest(dispersions=[uniform("x", 0.0, 1.0)], runs=25_000, seed=7)
    chunks = await responses(channel, request)
    assert [len(c.runs.run_ids) for c in chunks] == [10_000, 10_000, 5_000]
    assert [c.total_runs for c in chunks] == [25_000, 0, 0]
    runs = [row for c in chunks for row in rows(c.runs)]
    assert [run_id for run_id, _, _ in runs] == list(range(25_000))
    assert [seed for _, seed, _ in runs[-3:]] == [run_seed(7, i) for i in range(24_997, 25_000)]
    values = np.array([p["x"] for p in parameters(runs)])
    # empty sampling_method means latin_hypercube: one point per stratum
    assert sorted(np.floor(values * 25_000).astype(int)) == list(range(25_000))


async def test_every_distribution_streams_with_its_value_types(channel):
    request = to_request(ALL, {"method": "random", "runs": 300, "seed": 5})
    runs = await sample_all(channel, request)
    expected = core.sample(ALL, "random", 300, seed=5).rows()
    assert parameters(runs) == expected
    assert {p["choice"] for p in parameters(runs)} == {"a", 2.5, "c"}
    assert [p["integer"] for p in parameters(runs)] == [p["integer"] for p in expected]
    assert {p["integer"] for p in parameters(runs)} == set(range(-2, 4))
    assert {type(p["integer"]) for p in parameters(runs)} == {int}


async def test_sobol_warning_arrives_on_the_first_chunk(channel):
    request = pb.SampleRequest(dispersions=[uniform("x", 0.0, 1.0)], sampling_method="sobol", runs=15_000, seed=1)
    chunks = await responses(channel, request)
    assert list(chunks[0].warnings) == [
        "sobol: 15000 runs is not a power of two; balance properties hold only at powers of two (8192 or 16384)"
    ]
    assert list(chunks[1].warnings) == []


async def test_grid_streams_every_combination_and_warns_about_runs(channel):
    request = to_request(
        [
            ("u", {"type": "uniform", "min": 0.0, "max": 1.0, "levels": 2}),
            ("c", {"type": "choice", "values": ["a", "b", "c"]}),
        ],
        {"method": "grid", "runs": 5},
    )
    (only,) = await responses(channel, request)
    assert only.total_runs == 6
    assert list(only.warnings) == ["grid: runs (5) is ignored; the grid has 6 points (2 x 3 levels)"]
    combos = [(p["u"], p["c"]) for p in parameters(rows(only.runs))]
    assert combos == [(u, c) for u in (0.25, 0.75) for c in "abc"]


async def test_extension_continues_run_ids_and_points(channel):
    specs = [("x", {"type": "uniform", "min": 0.0, "max": 1.0}), ("n", {"type": "integer_uniform", "min": 0, "max": 9})]
    whole = await sample_all(channel, to_request(specs, {"method": "halton", "runs": 1500, "seed": 3}))
    rest = await sample_all(
        channel, to_request(specs, {"method": "halton", "runs": 700, "seed": 3, "existing_runs": 800})
    )
    assert [run_id for run_id, _, _ in rest] == list(range(800, 1500))
    assert [seed for _, seed, _ in rest] == [run_seed(3, i) for i in range(800, 1500)]
    assert rest == whole[800:]


async def test_correlation_over_grpc(channel):
    specs = [("a", {"type": "normal", "mean": 0.0, "std": 1.0}), ("b", {"type": "lognormal", "mu": 0.0, "sigma": 1.0})]
    correlation = {"parameters": ["b", "a"], "matrix": [[1, -0.6], [-0.6, 1]]}
    points = parameters(
        await sample_all(channel, to_request(specs, {"runs": 1000, "seed": 6, "correlation": correlation}))
    )
    a = [p["a"] for p in points]
    b = [p["b"] for p in points]
    assert stats.spearmanr(a, b).statistic == pytest.approx(-0.6, abs=0.05)


async def test_twenty_thousand_runs_of_twenty_parameters_stream(channel):
    specs = [(f"p{i}", spec) for i, (_, spec) in enumerate(ALL * 3)][:20]
    chunks = await responses(channel, to_request(specs, {"method": "latin_hypercube", "runs": 20_000, "seed": 1}))
    assert len(chunks) == 2 and chunks[0].total_runs == 20_000
    assert chunks[-1].runs.run_ids[-1] == 19_999
    assert len(chunks[1].runs.parameters) == 20
    assert all(len(column_values(c)) == 10_000 for c in chunks[1].runs.parameters)


async def test_wide_points_arrive_in_smaller_chunks_under_the_default_4_mb_limit(channel):
    # a plain channel (default options) refuses messages over 4 MB
    specs = [(f"parameter_with_a_long_name_{i:04d}", {"type": "uniform", "min": 0.0, "max": 1.0}) for i in range(400)]
    chunks = await responses(channel, to_request(specs, {"runs": 3000, "seed": 2}))
    assert len(chunks) > 1 and chunks[0].total_runs == 3000
    assert sum(len(c.runs.run_ids) for c in chunks) == 3000
    assert max(c.ByteSize() for c in chunks) <= 2 * 1024 * 1024


def proto_cases() -> list:
    """The core error table, minus the cases a proto cannot express (e.g. min given as a string)."""
    cases = []
    for case_id, dispersions, options, field in ERRORS:
        try:
            request = to_request(dispersions, options)
        except TypeError:
            continue
        cases.append(pytest.param(request, field, id=case_id))
    return cases


@pytest.mark.parametrize(("request_message", "field"), proto_cases())
async def test_bad_input_is_invalid_argument_naming_the_field(channel, request_message, field):
    received = []
    stub = pb_grpc.SamplerServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for response in stub.Sample(request_message, timeout=20):
            received.append(response)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # the field travels in structure (google.rpc.BadRequest), the text stays readable
    ((violation_field, problem),) = field_violations(err.value)
    assert violation_field == field
    assert err.value.details() == f"{field} {problem}"
    assert received == []  # validation happens before any chunk is sent


def test_most_error_cases_are_checked_over_grpc():
    assert len(proto_cases()) >= len(ERRORS) - 5


async def test_zero_bound_is_a_set_value_not_a_missing_one(channel):
    # min=0.0 is explicitly set (optional field): it must not be reported as missing
    request = pb.SampleRequest(dispersions=[uniform("x", 0.0, 1.0)], runs=3, seed=1)
    points = parameters(await sample_all(channel, request))
    assert len(points) == 3
    assert all(0.0 <= p["x"] <= 1.0 for p in points)


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
    responses_ = [r async for r in call]
    assert len(responses_) == 1
    names = {s.name for s in responses_[0].list_services_response.service}
    assert "lynx.sampler.v1.SamplerService" in names
    assert "grpc.health.v1.Health" in names


async def test_reflection_describes_the_sample_method(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol="lynx.sampler.v1.SamplerService")]),
        timeout=5,
    )
    responses_ = [r async for r in call]
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in responses_[0].file_descriptor_response.file_descriptor_proto
    ]
    services = {(f.package, s.name): [m.name for m in s.method] for f in files for s in f.service}
    assert services[("lynx.sampler.v1", "SamplerService")] == ["Sample"]

"""Sampling requests from protos to the plain Python `core` works on (no gRPC here)."""

from __future__ import annotations

from google.protobuf import struct_pb2

from lynx.common.v1 import batch_config_pb2
from lynx.sampler.v1 import sampler_service_pb2 as pb
from lynx_sampler import core


def from_value(value: struct_pb2.Value) -> object:
    """A google.protobuf.Value as plain Python (None, bool, float, str, list or dict)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "list_value":
        return [from_value(v) for v in value.list_value.values]
    if kind == "struct_value":
        return {k: from_value(v) for k, v in value.struct_value.fields.items()}
    return None


def distribution_spec(distribution: batch_config_pb2.Distribution) -> dict:
    """{field: value} of the fields the user set, as plain Python (`values` as str/float)."""
    spec: dict = {}
    for f, v in distribution.ListFields():
        if f.name == "values":
            spec[f.name] = [from_value(x) for x in v]
        elif f.name == "weights":
            spec[f.name] = list(v)
        else:
            spec[f.name] = v
    return spec


def dispersion_specs(dispersions: list[batch_config_pb2.Dispersion]) -> list[tuple[str, dict]]:
    """(name, {field: value}) of each dispersion, with only the fields the user set."""
    return [(d.name, distribution_spec(d.distribution)) for d in dispersions]


def correlation_spec(
    holder: pb.SampleRequest | batch_config_pb2.MonteCarlo,
) -> dict | None:
    """The correlation of a request (or of a config's monte_carlo) as {parameters, matrix},
    or None when it is not set."""
    if not holder.HasField("correlation"):
        return None
    correlation = holder.correlation
    spec: dict = {"parameters": list(correlation.parameters)}
    if correlation.HasField("matrix"):
        spec["matrix"] = [from_value(row) for row in correlation.matrix.values]
    return spec


def plan_request(request: pb.SampleRequest) -> core.Plan:
    """Validate a SampleRequest (raises ValidationError naming the field)."""
    return core.plan(
        dispersion_specs(list(request.dispersions)),
        method=request.sampling_method,
        runs=request.runs,
        seed=request.seed,
        optimization=request.optimization,
        correlation=correlation_spec(request),
        existing_runs=request.existing_runs,
    )

"""SamplerService over gRPC: a thin translation of protos to `lynx_sampler.core`."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
from google.protobuf import struct_pb2

from lynx.common.v1 import batch_config_pb2
from lynx.sampler.v1 import sampler_service_pb2 as pb
from lynx_common.errors import ValidationError
from lynx_common.server import GrpcServer, configure_logging, serve_until_signalled
from lynx_sampler import core
from lynx_sampler.encoding import encoded_chunks

log = logging.getLogger(__name__)


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


def correlation_spec(request: pb.SampleRequest) -> dict | None:
    """The request's correlation as {parameters, matrix}, or None when it is not set."""
    if not request.HasField("correlation"):
        return None
    correlation = request.correlation
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


SERVICE = pb.DESCRIPTOR.services_by_name["SamplerService"].full_name


class SamplerServicer:
    """Validates the spec, samples it and streams the points in chunks.

    `Sample` yields SampleResponse messages already serialized (by `lynx_sampler.encoding`,
    canonical protobuf bytes), so the method is registered with a pass-through serializer
    instead of the generated `add_SamplerServiceServicer_to_server`."""

    async def Sample(self, request: pb.SampleRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        try:
            plan = plan_request(request)
        except ValidationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        sample = await asyncio.to_thread(core.generate, plan)
        log.info(
            "sampled %d x %d with %s from run %d", len(sample), len(plan.params), plan.method, sample.first_run_id
        )
        for data in encoded_chunks(sample, request.seed):
            yield data


def _serialized(data: bytes) -> bytes:
    """Response serializer for messages that are already bytes."""
    return data


def register(server: grpc.aio.Server) -> None:
    """Add the SamplerService (Sample streaming pre-serialized responses) to `server`."""
    handler = grpc.unary_stream_rpc_method_handler(
        SamplerServicer().Sample, request_deserializer=pb.SampleRequest.FromString, response_serializer=_serialized
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Sample": handler}),))


def build_server(host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    """The sampler's gRPC server, not yet started."""
    return GrpcServer(register, [SERVICE], host, port)


async def run(host: str, port: int) -> None:
    """Serve until signalled (the grpc.aio server must be built inside the running loop)."""
    await serve_until_signalled(build_server(host, port))


def main(argv: list[str] | None = None) -> None:
    """Run the sampler until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="lynx-sampler", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50052)
    args = parser.parse_args(argv)
    configure_logging()
    asyncio.run(run(args.host, args.port))


if __name__ == "__main__":
    main()

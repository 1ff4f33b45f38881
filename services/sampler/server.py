"""SamplerService over gRPC: a thin translation of protos to `lynx_sampler.core`."""

from __future__ import annotations

import argparse
import asyncio
import logging

import grpc
from google.protobuf import struct_pb2
from lynx.common.v1 import batch_config_pb2
from lynx.sampler.v1 import sampler_service_pb2 as pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as pb_grpc
from lynx_common.errors import ValidationError
from lynx_common.server import GrpcServer, configure_logging, serve_until_signalled
from lynx_sampler import core

log = logging.getLogger(__name__)
CHUNK = 1000


def dispersion_specs(dispersions: list[batch_config_pb2.Dispersion]) -> list[tuple[str, dict]]:
    """(name, {field: value}) of each dispersion, with only the fields the user set."""
    return [
        (d.name, {f.name: v for f, v in d.distribution.ListFields()}) for d in dispersions
    ]


class SamplerServicer(pb_grpc.SamplerServiceServicer):
    """Validates the spec, samples it and streams the points in chunks."""

    async def Sample(self, request: pb.SampleRequest, context: grpc.aio.ServicerContext):
        try:
            params = core.build_parameters(dispersion_specs(list(request.dispersions)))
            points = core.sample(params, request.sampling_method, request.runs, request.seed)
        except ValidationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        names = [p.name for p in params]
        log.info("sampled %d x %d with %s", len(points), len(names), request.sampling_method)
        for start in range(0, len(points), CHUNK):
            chunk = []
            for offset, row in enumerate(points[start : start + CHUNK]):
                parameters = struct_pb2.Struct()
                parameters.update(dict(zip(names, map(float, row), strict=True)))
                chunk.append(pb.ParameterSet(run_id=start + offset, parameters=parameters))
            yield pb.SampleResponse(parameter_sets=chunk)


def build_server(host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    """The sampler's gRPC server, not yet started."""
    return GrpcServer(
        lambda s: pb_grpc.add_SamplerServiceServicer_to_server(SamplerServicer(), s),
        [pb.DESCRIPTOR.services_by_name["SamplerService"].full_name],
        host,
        port,
    )


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

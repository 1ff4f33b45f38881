"""SamplerService over gRPC: a thin translation of protos to `lynx_sampler.core`."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from lynx.sampler.v1 import sampler_service_pb2 as pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as pb_grpc
from lynx_common import security
from lynx_common.errors import ValidationError
from lynx_common.server import GrpcServer, configure_logging, serve_until_signalled
from lynx_common.status import abort_validation
from lynx_sampler import core
from lynx_sampler.columns import responses
from lynx_sampler.specs import plan_request

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["SamplerService"].full_name


class SamplerServicer(pb_grpc.SamplerServiceServicer):
    """Validates the spec, samples it and streams the points as typed columns in chunks."""

    async def Sample(
        self, request: pb.SampleRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SampleResponse]:
        try:
            plan = plan_request(request)
        except ValidationError as exc:
            await abort_validation(context, exc)
        sample = await asyncio.to_thread(core.generate, plan)
        log.info("sampled %d x %d with %s from run %d", len(sample), len(plan.params), plan.method, sample.first_run_id)
        for response in responses(sample, request.seed):
            yield response


def register(server: grpc.aio.Server) -> None:
    """Add the SamplerService to `server`."""
    pb_grpc.add_SamplerServiceServicer_to_server(SamplerServicer(), server)


def build_server(host: str = "127.0.0.1", port: int = 0, secure: security.ServerSecurity | None = None,
                 verify: security.Verify | None = None) -> GrpcServer:
    """The sampler's gRPC server, not yet started."""
    return GrpcServer(register, [SERVICE], host, port, secure, verify)


async def run(host: str, port: int, args: argparse.Namespace | None = None) -> None:
    """Serve until signalled (the grpc.aio server must be built inside the running loop)."""
    secure = security.server_security(args) if args is not None else security.ServerSecurity()
    security.check_exposure("lynx-sampler", host, secure)
    verify = security.remote_verifier(args) if args is not None else None
    await serve_until_signalled(build_server(host, port, secure, verify))


def main(argv: list[str] | None = None) -> None:
    """Run the sampler until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="lynx-sampler", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50052)
    security.add_server_args(parser)
    args = parser.parse_args(argv)
    configure_logging()
    asyncio.run(run(args.host, args.port, args))


if __name__ == "__main__":
    main()

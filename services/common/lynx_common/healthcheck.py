"""Command-line gRPC health probe (used by compose health checks): exit 0 when SERVING."""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lynx_common.security import channel_credentials


def main(argv: list[str] | None = None) -> int:
    """Check `grpc.health.v1.Health/Check` on --addr for --service."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addr", required=True, help="host:port of the gRPC server")
    parser.add_argument("--service", default="", help="service name; empty = whole server")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    try:
        credentials = channel_credentials()  # TLS when LYNX_TLS_CA is set
        channel = (grpc.secure_channel(args.addr, credentials) if credentials is not None
                   else grpc.insecure_channel(args.addr))
        with channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
    except grpc.RpcError as exc:
        print(f"{args.addr}: {exc.code().name}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{args.addr}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())

"""Server reflection under both protocols: grpc.reflection.v1 and v1alpha.

grpcio-reflection ships only v1alpha; `buf curl --reflect-protocol grpc-v1` and newer grpcurl
ask v1. The two protocols' messages are identical on the wire (only the package differs), so
v1 is served by the same servicer behind a handler registered under the v1 name."""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE_NAME = reflection.SERVICE_NAME


def enable_server_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Answer reflection for `service_names` (and both reflection services) under v1 and v1alpha."""
    names = [*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME]
    servicer = reflection.aio.ReflectionServicer(names)
    reflection.enable_server_reflection(names, server)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {"ServerReflectionInfo": handler}),)
    )

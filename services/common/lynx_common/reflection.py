"""Server reflection under both protocols: grpc.reflection.v1 and v1alpha.

grpcio-reflection ships only v1alpha; `buf curl --reflect-protocol grpc-v1` and newer grpcurl
ask v1. The two protocols' messages are identical on the wire (only the package differs), so
v1 is served by the same servicer behind a handler registered under the v1 name, and the v1
service's own descriptor (the v1alpha file under the v1 package) joins the default pool, so a
client that describes every listed service (`buf curl --list-methods`) finds it too."""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE_NAME = reflection.SERVICE_NAME


V1_FILE = "grpc/reflection/v1/reflection.proto"


def _add_v1_descriptor() -> None:
    """Put grpc.reflection.v1's file into the default descriptor pool (once): v1alpha's, renamed."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(V1_FILE)
        return
    except KeyError:
        pass
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    old, new = "grpc.reflection.v1alpha", "grpc.reflection.v1"
    file.name, file.package = V1_FILE, new
    file.options.Clear()
    for message in file.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(f".{old}.", f".{new}.")
    for service in file.service:
        for method in service.method:
            method.input_type = method.input_type.replace(f".{old}.", f".{new}.")
            method.output_type = method.output_type.replace(f".{old}.", f".{new}.")
    pool.Add(file)


def enable_server_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Answer reflection for `service_names` (and both reflection services) under v1 and v1alpha."""
    _add_v1_descriptor()
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

"""Generic gRPC clients work fully: every server answers reflection under v1 and v1alpha.

Runs the real services as processes (the stack module) and lists each service's methods
through both reflection protocols, as `buf curl --reflect-protocol grpc-v1` and older
grpcurl builds do."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from lynx_cli.stack import Ports, Stack

pytestmark = pytest.mark.timeout(120)

PROTOCOLS = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")
SERVICES = {
    "sampler": "lynx.sampler.v1.SamplerService",
    "scheduler": "lynx.scheduler.v1.SchedulerService",
    "telemetry": "lynx.telemetry.v1.TelemetryService",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("reflection"), Ports(0, 0, 0, 0))
    stack.start()
    yield stack
    stack.stop()


def ask(address: str, protocol: str, request: reflection_pb2.ServerReflectionRequest):
    """One request over `protocol`'s ServerReflectionInfo stream (the two share a wire format)."""
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(
            f"/{protocol}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        (response,) = list(call(iter([request]), timeout=10))
        return response


def methods(address: str, protocol: str, service: str) -> set[str]:
    response = ask(address, protocol, reflection_pb2.ServerReflectionRequest(file_containing_symbol=service))
    assert not response.HasField("error_response"), response.error_response
    package, _, name = service.rpartition(".")
    for blob in response.file_descriptor_response.file_descriptor_proto:
        file = descriptor_pb2.FileDescriptorProto.FromString(blob)
        if file.package == package:
            for s in file.service:
                if s.name == name:
                    return {m.name for m in s.method}
    raise AssertionError(f"{service} not described over {protocol}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_lists_its_methods_over_both_reflection_protocols(stack, name, protocol):
    address = f"127.0.0.1:{getattr(stack.ports, name)}"
    listed = ask(address, protocol, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listed.list_services_response.service}
    assert {SERVICES[name], "grpc.health.v1.Health", *PROTOCOLS} <= names
    expected = {
        "sampler": {"Sample"},
        "scheduler": {"SubmitBatch", "GetBatch", "ListBatches", "CancelBatch", "Connect", "ListRunners"},
        "telemetry": {"Publish", "Query", "Subscribe", "Export"},
    }[name]
    assert expected <= methods(address, protocol, SERVICES[name])
    assert "Check" in methods(address, protocol, "grpc.health.v1.Health")
    for listed_name in names:  # every listed service is described, as `buf curl --list-methods` needs
        assert methods(address, protocol, listed_name), listed_name

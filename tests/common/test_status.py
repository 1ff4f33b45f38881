"""Bad input crosses gRPC with its field in structure (google.rpc.BadRequest), over a real server."""

from __future__ import annotations

import grpc
import pytest

from lynx_common.errors import ValidationError
from lynx_common.server import GrpcServer
from lynx_common.status import abort_validation, field_violations, validation_error

pytestmark = pytest.mark.timeout(30)
SERVICE = "lynx.demo.v1.Demo"


def register(server: grpc.aio.Server) -> None:
    async def check(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if request:
            await abort_validation(context, ValidationError("dispersions.eccentricity.distribution.max",
                                                            "must be greater than min"))
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "plain text, no details")

    handler = grpc.unary_unary_rpc_method_handler(check, request_deserializer=bytes, response_serializer=bytes)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Check": handler}),))


@pytest.fixture
async def call():
    server = GrpcServer(register, [SERVICE])
    await server.start()
    async with grpc.aio.insecure_channel(server.address) as channel:
        method = channel.unary_unary(f"/{SERVICE}/Check", request_serializer=bytes, response_deserializer=bytes)

        async def invoke(payload: bytes) -> grpc.aio.AioRpcError:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await method(payload, timeout=5)
            return err.value

        yield invoke
    await server.stop(0)


async def test_the_field_travels_in_the_details_and_the_message_stays_readable(call):
    error = await call(b"x")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "dispersions.eccentricity.distribution.max must be greater than min"
    assert field_violations(error) == [("dispersions.eccentricity.distribution.max", "must be greater than min")]
    again = validation_error(error)
    assert (again.field, again.problem) == ("dispersions.eccentricity.distribution.max", "must be greater than min")


async def test_an_error_without_details_has_no_field(call):
    error = await call(b"")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == []
    assert validation_error(error) is None

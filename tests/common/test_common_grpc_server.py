"""The shared server bootstrap: port 0, health on every service, graceful stop, busy ports."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lynx_common.server import GrpcServer

pytestmark = pytest.mark.timeout(30)


async def check(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return (await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)).status


async def test_port_zero_picks_a_free_port_and_every_named_service_is_serving():
    server = GrpcServer(lambda s: None, ["lynx.demo.v1.A", "lynx.demo.v1.B"])
    await server.start()
    try:
        assert server.port > 0
        assert server.address == f"127.0.0.1:{server.port}"
        for name in ["", "lynx.demo.v1.A", "lynx.demo.v1.B"]:
            assert await check(server.address, name) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await check(server.address, "lynx.demo.v1.Unknown")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(0)


async def test_stopped_server_refuses_calls():
    server = GrpcServer(lambda s: None, ["lynx.demo.v1.A"])
    await server.start()
    address = server.address
    await server.stop(0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await check(address)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_second_server_on_a_busy_port_fails_to_bind():
    first = GrpcServer(lambda s: None, ["lynx.demo.v1.A"])
    await first.start()
    try:
        with pytest.raises((OSError, RuntimeError)):
            second = GrpcServer(lambda s: None, ["lynx.demo.v1.B"], "127.0.0.1", first.port)
            await second.start()
            await second.stop(0)
    finally:
        await first.stop(0)

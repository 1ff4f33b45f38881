"""Readiness of the gateway's backends over grpc.health.v1, for GET /readyz."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

CHECK_DEADLINE_S = 1.0


class Readiness:
    """Asks each backend's health service (the whole server, service name "") whether it is SERVING."""

    def __init__(self, channels: dict[str, grpc.aio.Channel]) -> None:
        self.channels = channels
        self.stubs = {name: health_pb2_grpc.HealthStub(channel) for name, channel in channels.items()}

    async def _check(self, stub: health_pb2_grpc.HealthStub) -> str | None:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=CHECK_DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            return f"is unreachable ({exc.code().name})"
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            return f"is {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
        return None

    async def not_ready(self) -> dict[str, str]:
        """{backend: why} for every backend that is not SERVING; {} when all are."""
        answers = await asyncio.gather(*(self._check(stub) for stub in self.stubs.values()))
        return {name: why for name, why in zip(self.stubs, answers, strict=True) if why is not None}

    async def close(self, keep: Iterable[grpc.aio.Channel] = ()) -> None:
        """Close the channels opened for readiness alone (not those in `keep`)."""
        kept = set(map(id, keep))
        for channel in self.channels.values():
            if id(channel) not in kept:
                await channel.close()

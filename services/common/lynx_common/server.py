"""One bootstrap for every Lynx gRPC server: health, reflection, keepalive, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from lynx_common.limits import value as limit
from lynx_common.reflection import enable_server_reflection
from lynx_common.security import AuthInterceptor, ServerSecurity, Verify

log = logging.getLogger(__name__)

# Keepalive: clients ping every 20 s; the server permits pings every 10 s.
SERVER_OPTIONS = [
    ("grpc.so_reuseport", 0),  # a busy port is an error, not a silently shared one
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", limit("grpc_message_bytes")),
    ("grpc.max_send_message_length", limit("grpc_message_bytes")),
]
CLIENT_OPTIONS = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", limit("grpc_message_bytes")),
    ("grpc.max_send_message_length", limit("grpc_message_bytes")),
]


def client_channel(target: str) -> grpc.aio.Channel:
    """A grpc.aio channel with keepalive matching SERVER_OPTIONS; TLS and a token from LYNX_TLS_* and
    LYNX_TOKEN when set (lynx_common.security)."""
    from lynx_common import security

    return security.client_channel(target, CLIENT_OPTIONS)


class GrpcServer:
    """A grpc.aio server with health and reflection (v1 and v1alpha), started on host:port (0 = any free port)."""

    def __init__(
        self,
        register: Callable[[grpc.aio.Server], None],
        service_names: Iterable[str],
        host: str = "127.0.0.1",
        port: int = 0,
        security: ServerSecurity | None = None,
        verify: Verify | None = None,
        ready: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """`security`: TLS (and mutual TLS); `verify`: check bearer tokens with it (lynx_common.security);
        `ready`: awaited after start; until it returns, health says NOT_SERVING."""
        self.ready = ready
        self._becoming_ready: asyncio.Task | None = None
        interceptors = [AuthInterceptor(verify)] if verify is not None else []
        self.server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors)
        register(self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names = list(service_names)
        enable_server_reflection([*self.service_names, health.SERVICE_NAME], self.server)
        credentials = security.server_credentials() if security is not None else None
        if credentials is None:
            self.port = self.server.add_insecure_port(f"{host}:{port}")
        else:
            self.port = self.server.add_secure_port(f"{host}:{port}", credentials)
        if self.port == 0:
            raise OSError(f"cannot bind {host}:{port}")
        self.address = f"{host}:{self.port}"

    async def start(self) -> None:
        """Start serving and mark every service SERVING (once `ready` has returned, if given)."""
        await self.server.start()
        if self.ready is None:
            await self._set(health_pb2.HealthCheckResponse.SERVING)
            return
        await self._set(health_pb2.HealthCheckResponse.NOT_SERVING)
        self._becoming_ready = asyncio.create_task(self._serve_when_ready())

    async def _serve_when_ready(self) -> None:
        await self.ready()
        await self._set(health_pb2.HealthCheckResponse.SERVING)
        log.info("%s is ready", self.address)

    async def _set(self, status: int) -> None:
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def stop(self, grace: float = 5.0) -> None:
        """Mark NOT_SERVING, then stop, letting in-flight calls finish within `grace` seconds."""
        if self._becoming_ready is not None:
            self._becoming_ready.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def configure_logging(level: str = "INFO") -> None:
    """One structured line format for all services."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


async def serve_until_signalled(
    server: GrpcServer,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    grace: float = 5.0,
) -> None:
    """Start `server`, wait for SIGTERM or SIGINT, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    log.info("serving %s on %s", ",".join(server.service_names), server.address)
    await stop.wait()
    log.info("stopping %s", server.address)
    await server.stop(grace)
    if on_stop is not None:
        await on_stop()

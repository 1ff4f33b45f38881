"""The per-job endpoint's Unix stream socket: the client library's grpc-free fast path.

Beside its gRPC port, a job's endpoint listens on `telemetry.sock` in the job's private directory
(mode 0600; a short private temporary directory when that path is too long for a Unix socket),
advertised as `unix=` in TETRYX_TELEMETRY_URL. `lynx_telemetry_client` uses it when it can reach it,
so the job never imports gRPC; any gRPC client can still publish to the URL's host:port.

Framing (lynx_telemetry_client/_transport.py is the other side), every frame a 4-byte big-endian length
then that many bytes: first the job's secret (anything else: the connection is closed, counted in
`refused`, nothing reaches the watchdog), then serialized PublishRequests, each fed to the same
`JobTelemetryServicer.take()` as a gRPC Publish (same counts, watchdog and relay), and an empty
frame that ends a round, answered with 8 bytes: the samples accepted in the round.

Backpressure: a frame is read whole (at most `grpc_message_bytes`, like a gRPC message), parsed
and handed on before the next is read, with no queue in between; the relay never waits, so a
fast client only fills the kernel's socket buffer and its own sendall() waits, never the loop.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import shutil
import socket
import struct
import tempfile
from pathlib import Path

from google.protobuf.message import DecodeError

from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx_common.limits import value as limit
from lynx_common.telemetry_blocks import sample_count
from lynx_runner.endpoint import JobTelemetryServicer

log = logging.getLogger(__name__)
SOCKET_NAME = "telemetry.sock"
MAX_SOCKET_PATH = 100  # bytes; sun_path holds 108 with its NUL, and the client must see the same path
MAX_SECRET_BYTES = 1024
READ_LIMIT = 1 << 20  # the stream reader's buffer high-water mark
FRAME = struct.Struct(">I")
ACK = struct.Struct(">q")


class FrameError(Exception):
    """A frame the protocol does not allow (too long)."""


class UnixTelemetryEndpoint:
    """Serves one job's telemetry socket; feeds `servicer` exactly as its gRPC Publish does."""

    def __init__(self, servicer: JobTelemetryServicer, directory: Path) -> None:
        self.servicer = servicer
        self.directory = directory
        self.path: Path | None = None
        self.refused = 0  # connections closed for a wrong or missing secret
        self.max_frame = limit("grpc_message_bytes")
        self._server: asyncio.AbstractServer | None = None
        self._tmp: str | None = None
        self._sessions: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Bind the socket (0600) and start serving; raises OSError when it cannot."""
        path = self.directory / SOCKET_NAME
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            self._tmp = tempfile.mkdtemp(prefix="lynx-tel-")  # 0700, this user's only
            path = Path(self._tmp) / SOCKET_NAME
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.fchmod(sock.fileno(), 0o600)  # Linux: the socket file is created with this mode
            sock.bind(str(path))
            os.chmod(path, 0o600)
            self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=READ_LIMIT)
        except BaseException:
            sock.close()
            self._remove(path)
            raise
        self.path = path

    async def stop(self, grace: float) -> None:
        """Stop accepting; let open sessions read what their clients sent for up to `grace` s."""
        if self._server is not None:
            self._server.close()
        if self._sessions:
            _, pending = await asyncio.wait(set(self._sessions), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.path is not None:
            self._remove(self.path)

    def _remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._sessions.add(task)
        try:
            await self._session(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, DecodeError, FrameError) as exc:
            log.info("telemetry socket session ended: %s: %s", type(exc).__name__, exc)
        finally:
            self._sessions.discard(task)
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        secret = await self._frame(reader, MAX_SECRET_BYTES)
        expected = self.servicer.secret
        if secret is None or (expected is not None and not hmac.compare_digest(secret, expected.encode())):
            self.refused += 1
            log.warning("telemetry socket: refused a connection without the job's secret")
            return
        accepted = 0
        while True:
            data = await self._frame(reader, self.max_frame)
            if data is None:  # the client closed between frames
                return
            if not data:  # the end of a round: say how many samples it delivered
                writer.write(ACK.pack(accepted))
                await writer.drain()
                accepted = 0
                continue
            request = tel_pb.PublishRequest.FromString(data)
            self.servicer.take(request)
            accepted += sample_count(request)

    @staticmethod
    async def _frame(reader: asyncio.StreamReader, limit_bytes: int) -> bytes | None:
        """The next frame's bytes, or None at a clean end of stream."""
        try:
            header = await reader.readexactly(FRAME.size)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return None
            raise
        (size,) = FRAME.unpack(header)
        if size > limit_bytes:
            raise FrameError(f"a frame of {size} bytes, over the limit of {limit_bytes}")
        return await reader.readexactly(size) if size else b""


async def start_unix_endpoint(servicer: JobTelemetryServicer, directory: Path) -> UnixTelemetryEndpoint | None:
    """The job's socket endpoint, serving; None (logged) when it cannot be bound: gRPC still works."""
    endpoint = UnixTelemetryEndpoint(servicer, directory)
    try:
        await endpoint.start()
    except OSError as exc:
        log.warning("telemetry socket not available in %s (gRPC only): %s", directory, exc)
        return None
    return endpoint

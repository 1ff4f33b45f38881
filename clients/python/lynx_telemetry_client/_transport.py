"""How a round of PublishRequests reaches the endpoint: the job's Unix socket, else one gRPC Publish stream.

`connect()` returns a publisher: `publish(requests)` returns when the round was delivered and raises
otherwise, `cancel()` (from any thread) makes a publish in flight fail now, `close()` ends it.

The grpc-free fast path (standard library only; gRPC is imported only by GrpcPublisher): the runner's
per-job endpoint also listens on a Unix socket in the job's private directory and
advertises it as `unix=` in TETRYX_TELEMETRY_URL. Framing, every frame a 4-byte big-endian length
then that many bytes:

* client -> endpoint, once: the job's secret (the `token=` of the URL); a wrong one closes the socket;
* client -> endpoint: serialized `lynx.telemetry.v1.PublishRequest` messages, then an empty frame
  that ends the round;
* endpoint -> client, per round: 8 bytes (big-endian int64), the samples it accepted in the round.

A round counts as delivered only once that answer arrives, like the response of one gRPC Publish
stream; anything else (closed, refused, timed out) fails the whole round.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("lynx_telemetry_client")
FRAME = struct.Struct(">I")
ACK = struct.Struct(">q")


class UnixPublisher:
    """One connection to the endpoint's socket, (re)opened lazily; `cancel()` may be called from any thread."""

    def __init__(self, path: str, token: str, timeout: float) -> None:
        self.path = path
        self.token = token.encode()
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._cancelled = False

    def connect(self) -> None:
        """Connect and present the secret; raises OSError when the socket cannot be reached."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
            sock.sendall(FRAME.pack(len(self.token)) + self.token)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def publish(self, requests: Iterable[Any]) -> int:
        """Send one round and wait for its answer; the samples the endpoint accepted. Raises on failure."""
        if self._cancelled:
            raise TimeoutError("cancelled")
        if self._sock is None:
            self.connect()
        sock = self._sock
        try:
            parts = []
            for request in requests:
                data = request.SerializeToString()
                parts += (FRAME.pack(len(data)), data)
            parts.append(FRAME.pack(0))
            sock.sendall(b"".join(parts))
            answer = b""
            while len(answer) < ACK.size:
                chunk = sock.recv(ACK.size - len(answer))
                if not chunk:
                    raise ConnectionError("the telemetry endpoint closed the socket (wrong token?)")
                answer += chunk
            return ACK.unpack(answer)[0]
        except BaseException:
            self.close()
            raise

    def cancel(self) -> None:
        """Make a publish() in flight fail now (close() gave up waiting)."""
        self._cancelled = True
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class GrpcPublisher:
    """One gRPC channel; each round is one Publish stream with a deadline and the job's secret."""

    def __init__(self, target: str, token: str, timeout: float, pb: Any) -> None:
        import grpc

        from . import PUBLISH_METHOD

        self.timeout = timeout
        self.metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._channel = grpc.insecure_channel(target)
        self._stream = self._channel.stream_unary(
            PUBLISH_METHOD,
            request_serializer=pb.PublishRequest.SerializeToString,
            response_deserializer=pb.PublishResponse.FromString,
        )
        self._call: Any = None
        self._cancelled = False

    def publish(self, requests: Iterable[Any]) -> int:
        self._call = self._stream.future(iter(requests), timeout=self.timeout, metadata=self.metadata)
        if self._cancelled:  # cancel() ran while the stream was being started
            self._call.cancel()
        return self._call.result().accepted_samples

    def cancel(self) -> None:
        self._cancelled = True
        call = self._call
        if call is not None:
            call.cancel()

    def close(self) -> None:
        self._channel.close()


def connect(target: str, token: str, unix_path: str, timeout: float, pb: Any) -> UnixPublisher | GrpcPublisher:
    """A publisher over the runner's Unix socket when `unix_path` is given and can be reached, else gRPC."""
    if unix_path:
        publisher = UnixPublisher(unix_path, token, timeout)
        try:
            publisher.connect()
            return publisher
        except OSError as exc:
            log.debug("telemetry socket %s unreachable, using gRPC: %s", unix_path, exc)
    return GrpcPublisher(target, token, timeout, pb)

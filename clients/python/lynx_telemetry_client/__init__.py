"""Scalar telemetry client for scenarios run by Lynx.

`telemetry_client_from_env()` reads `TETRYX_TELEMETRY_URL`; without it every
call is a silent no-op, so a scenario runs the same inside and outside Lynx.
`send()` never blocks and never raises: samples go into a bounded buffer that
a background thread ships to the runner in batches; when the buffer is full
new samples are dropped and counted.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from typing import Mapping, Optional

__all__ = ["TelemetryClient", "NullTelemetryClient", "telemetry_client_from_env"]

ENV_VAR = "TETRYX_TELEMETRY_URL"
PUBLISH_METHOD = "/lynx.telemetry.v1.TelemetryService/Publish"

log = logging.getLogger("lynx_telemetry_client")


class NullTelemetryClient:
    """A client that accepts everything and does nothing (no TETRYX_TELEMETRY_URL)."""

    sent = 0
    dropped = 0

    def send(self, values: Mapping[str, float], timestamp_ns: Optional[int] = None) -> None:
        """Discard the sample."""

    def flush(self, timeout: float = 5.0) -> None:
        """Nothing to flush."""

    def close(self, timeout: float = 5.0) -> None:
        """Nothing to close."""

    def __enter__(self) -> "NullTelemetryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TelemetryClient:
    """Buffers samples and ships them on one client-streaming Publish call."""

    def __init__(
        self,
        target: str,
        *,
        max_buffered: int = 100_000,
        batch_size: int = 500,
        linger_s: float = 0.05,
    ) -> None:
        self.target = _strip_scheme(target)
        self.sent = 0
        self.dropped = 0
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._queue: "queue.Queue[object]" = queue.Queue(maxsize=max_buffered)
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._ship, name="lynx-telemetry", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def send(self, values: Mapping[str, float], timestamp_ns: Optional[int] = None) -> None:
        """Queue one sample of several variables; never blocks, never raises."""
        if self._closed:
            return
        try:
            ts = int(timestamp_ns) if timestamp_ns is not None else time.time_ns()
            sample = {k: float(v) for k, v in values.items()}
        except (TypeError, ValueError, AttributeError):
            self.dropped += 1
            return
        try:
            self._queue.put_nowait((ts, sample))
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued sample has been handed to gRPC (or timeout)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self, timeout: float = 5.0) -> None:
        """Ship what is buffered, end the stream and wait for it (at most `timeout`)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._queue.put(_CLOSE, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def __enter__(self) -> "TelemetryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _batches(self):
        """Yield PublishRequest messages until close() is called."""
        from . import telemetry_service_pb2 as pb

        while True:
            first = self._queue.get()
            if first is _CLOSE:
                self._queue.task_done()
                return
            items = [first]
            deadline = time.monotonic() + self._linger_s
            closing = False
            while len(items) < self._batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _CLOSE:
                    closing = True
                    break
                items.append(item)
            request = pb.PublishRequest(
                samples=[pb.TelemetrySample(timestamp_ns=ts, values=v) for ts, v in items]
            )
            self.sent += len(items)
            for _ in range(len(items) + closing):
                self._queue.task_done()
            yield request
            if closing:
                return

    def _ship(self) -> None:
        """Run the Publish stream; on any failure count the rest as dropped."""
        try:
            import grpc

            from . import telemetry_service_pb2 as pb

            with grpc.insecure_channel(self.target) as channel:
                publish = channel.stream_unary(
                    PUBLISH_METHOD,
                    request_serializer=pb.PublishRequest.SerializeToString,
                    response_deserializer=pb.PublishResponse.FromString,
                )
                publish(self._batches())
        except Exception as exc:  # noqa: BLE001 - telemetry must never crash a scenario
            log.debug("telemetry stream to %s ended: %s", self.target, exc)
            self._drain_as_dropped()

    def _drain_as_dropped(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            self._queue.task_done()
            if item is _CLOSE:
                return
            self.dropped += 1


_CLOSE = object()


def _strip_scheme(url: str) -> str:
    for scheme in ("grpc://", "http://"):
        if url.startswith(scheme):
            return url[len(scheme) :].rstrip("/")
    return url


def telemetry_client_from_env() -> "TelemetryClient | NullTelemetryClient":
    """Return a client for TETRYX_TELEMETRY_URL, or a no-op client when it is unset."""
    url = os.environ.get(ENV_VAR, "").strip()
    if not url:
        return NullTelemetryClient()
    try:
        return TelemetryClient(url)
    except Exception:  # noqa: BLE001 - a broken environment must not stop the scenario
        return NullTelemetryClient()

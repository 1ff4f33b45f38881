"""Scalar telemetry client for scenarios run by Lynx.

`telemetry_client_from_env()` reads `TETRYX_TELEMETRY_URL`; without it every
call is a silent no-op, so a scenario runs the same inside and outside Lynx.
`send()` never blocks and never raises: samples go into a bounded buffer that
a background thread ships to the runner in batches; a sample that is full,
malformed or undeliverable is dropped and counted in `dropped`, and `sent`
counts the samples the endpoint acknowledged.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping

__all__ = ["TelemetryClient", "NullTelemetryClient", "telemetry_client_from_env"]

ENV_VAR = "TETRYX_TELEMETRY_URL"
PUBLISH_METHOD = "/lynx.telemetry.v1.TelemetryService/Publish"

log = logging.getLogger("lynx_telemetry_client")


class NullTelemetryClient:
    """A client that accepts everything and does nothing (no TETRYX_TELEMETRY_URL)."""

    sent = 0
    dropped = 0

    def send(self, values: Mapping[str, float], timestamp_ns: int | None = None) -> None:
        """Discard the sample."""

    def flush(self, timeout: float = 5.0) -> None:
        """Nothing to flush."""

    def close(self, timeout: float = 5.0) -> None:
        """Nothing to close."""

    def __enter__(self) -> NullTelemetryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TelemetryClient:
    """Buffers samples; a background thread ships them in batches, one Publish call per batch."""

    def __init__(
        self,
        target: str,
        *,
        max_buffered: int = 100_000,
        batch_size: int = 500,
        linger_s: float = 0.02,
        call_timeout_s: float = 10.0,
    ) -> None:
        self.target = _strip_scheme(target)
        self.sent = 0  # samples the endpoint acknowledged
        self.dropped = 0  # samples refused, unencodable, over the buffer, or undeliverable
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._call_timeout_s = call_timeout_s
        self._queue: queue.Queue[tuple[int, dict[str, float]]] = queue.Queue(maxsize=max_buffered)
        self._closed = False
        self._thread = threading.Thread(target=self._ship, name="lynx-telemetry", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def send(self, values: Mapping[str, float], timestamp_ns: int | None = None) -> None:
        """Queue one sample of several variables; never blocks, never raises."""
        if self._closed:
            return
        try:
            ts = time.time_ns() if timestamp_ns is None else int(timestamp_ns)
            if not _INT64_MIN <= ts <= _INT64_MAX:
                raise ValueError("timestamp outside int64")
            sample = {}
            for name, value in values.items():
                if not isinstance(name, str):
                    raise TypeError("variable names must be strings")
                sample[name] = float(value)
            self._queue.put_nowait((ts, sample))
        except queue.Full:
            self.dropped += 1
        except Exception:  # noqa: BLE001 - a bad sample is dropped, never raised into the simulation
            self.dropped += 1

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued sample has been delivered or dropped (or `timeout` passes)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self, timeout: float = 5.0) -> None:
        """Ship what is buffered and stop the thread (waiting at most `timeout` seconds)."""
        self._closed = True
        self._thread.join(timeout)

    def __enter__(self) -> TelemetryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take_batch(self) -> list:
        """Up to batch_size samples, waiting briefly for the first and lingering for more."""
        try:
            items = [self._queue.get(timeout=0.05)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self._linger_s
        while len(items) < self._batch_size:
            try:
                items.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return items

    def _ship(self) -> None:
        """Deliver batches until closed and drained; a failed call drops (and counts) its batch."""
        try:
            import grpc

            from . import telemetry_service_pb2 as pb
        except Exception:  # noqa: BLE001 - no gRPC: behave like the no-op client
            self._closed = True
            return
        channel = grpc.insecure_channel(self.target)
        publish = channel.stream_unary(
            PUBLISH_METHOD,
            request_serializer=pb.PublishRequest.SerializeToString,
            response_deserializer=pb.PublishResponse.FromString,
        )
        try:
            while True:
                items = self._take_batch()
                if not items:
                    if self._closed:
                        return
                    continue
                try:
                    request = pb.PublishRequest(
                        samples=[pb.TelemetrySample(timestamp_ns=ts, values=v) for ts, v in items]
                    )
                    publish(iter([request]), timeout=self._call_timeout_s)
                    self.sent += len(items)
                except Exception as exc:  # noqa: BLE001 - never crash the scenario
                    log.debug("telemetry batch to %s lost: %s", self.target, exc)
                    self.dropped += len(items)
                for _ in items:
                    self._queue.task_done()
        finally:
            channel.close()


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _strip_scheme(url: str) -> str:
    for scheme in ("grpc://", "http://"):
        if url.startswith(scheme):
            return url[len(scheme) :].rstrip("/")
    return url


def telemetry_client_from_env() -> TelemetryClient | NullTelemetryClient:
    """Return a client for TETRYX_TELEMETRY_URL, or a no-op client when it is unset."""
    url = os.environ.get(ENV_VAR, "").strip()
    if not url:
        return NullTelemetryClient()
    try:
        return TelemetryClient(url)
    except Exception:  # noqa: BLE001 - a broken environment must not stop the scenario
        return NullTelemetryClient()

"""Scalar telemetry client for scenarios run by Lynx.

`telemetry_client_from_env()` reads `TETRYX_TELEMETRY_URL`; without it every
call is a silent no-op, so a scenario runs the same inside and outside Lynx.

`send()` never blocks and never raises: it appends `(timestamp, copy of the
values)` to a bounded in-memory buffer and returns. A background daemon thread
wakes every `linger_s` (or at once on `flush()`/`close()`), takes what is
buffered, encodes it column-wise (one `SampleBlock` per run of samples with the
same variables: the timestamps and the row-major values as packed repeated
fields, no per-sample message) and ships them as one round: one `Publish`
stream, or, when the URL names the runner's Unix socket (`unix=`), the same
messages framed over that socket with the standard library only (`_transport.py`;
gRPC is then never imported, so the job skips its import, and if the socket
cannot be reached the client falls back to gRPC). A sample that finds the buffer full, that is malformed, or
whose stream fails is dropped and counted in `dropped`; `sent` counts the
samples the endpoint acknowledged. Every `PublishRequest` carries the
cumulative `dropped` count in `dropped_samples`, so the runner learns it.

No thread is created and neither gRPC nor protobuf is imported at import time,
so a process (the runner's fork server) may import this module and fork before
creating its client.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from itertools import chain
from operator import itemgetter
from typing import Any

__all__ = ["TelemetryClient", "NullTelemetryClient", "telemetry_client_from_env"]

ENV_VAR = "TETRYX_TELEMETRY_URL"
PUBLISH_METHOD = "/lynx.telemetry.v1.TelemetryService/Publish"
DEFAULT_MAX_BUFFERED = 250_000  # samples waiting to be shipped; more are dropped (newest first)
DEFAULT_BATCH_SIZE = 5_000  # samples per PublishRequest message
DEFAULT_ROUND_SIZE = 10_000  # samples per Publish stream (one stream per shipping round)
DEFAULT_LINGER_S = 0.02  # how long the shipping thread lets samples accumulate
DEFAULT_CALL_TIMEOUT_S = 10.0  # deadline of one Publish stream
DEFAULT_CLOSE_TIMEOUT_S = 5.0  # close()/exit waits at most this long for delivery

log = logging.getLogger("lynx_telemetry_client")


class NullTelemetryClient:
    """A client that accepts everything and does nothing (no TETRYX_TELEMETRY_URL)."""

    sent = 0
    dropped = 0

    def send(self, values: Mapping[str, float], timestamp_ns: int | None = None) -> None:
        """Discard the sample."""

    def flush(self, timeout: float = DEFAULT_CLOSE_TIMEOUT_S) -> bool:
        """Nothing to flush."""
        return True

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT_S) -> None:
        """Nothing to close."""

    def __enter__(self) -> NullTelemetryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TelemetryClient:
    """Buffers samples in memory; a background thread ships them to the Publish endpoint."""

    def __init__(
        self,
        target: str,
        *,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        batch_size: int = DEFAULT_BATCH_SIZE,
        round_size: int = DEFAULT_ROUND_SIZE,
        linger_s: float = DEFAULT_LINGER_S,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> None:
        self.target, token = _split_url(target)
        self._token = token  # the job's secret
        self._unix_path = _unix_path(target)  # the runner's Unix socket: the grpc-free path
        self.sent = 0  # samples the endpoint acknowledged (written by the shipping thread only)
        self.dropped = 0  # samples refused, malformed, over the buffer, or undeliverable
        self._max_buffered = max_buffered
        self._limit = max_buffered  # send()'s fast-path bound; 0 once closed
        self._batch_size = max(1, batch_size)
        self._round_size = max(self._batch_size, round_size)
        self._linger_s = linger_s
        self._call_timeout_s = call_timeout_s
        self._buffer: deque[dict[Any, Any]] = deque()  # copies of the values, timestamp under _TS
        self._drop_lock = threading.Lock()
        self._progress = threading.Condition()  # guards _taken/_done; notified as rounds finish
        self._taken = 0  # samples the shipping thread has taken from the buffer
        self._done = 0  # of those, samples delivered or dropped
        self._wake = threading.Event()
        self._closed = False
        self._abort = False  # close() ran out of time: drop what is left and stop
        self._call: Any = None  # the round in flight (a Publish stream or the socket), so close() can cancel it
        self._thread = threading.Thread(target=self._run, name="lynx-telemetry", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # ------------------------------------------------------------ the simulation's side

    def send(self, values: Mapping[str, float], timestamp_ns: int | None = None) -> None:
        """Queue one sample of several variables; never blocks, never raises.

        `timestamp_ns` is the simulation time in nanoseconds (the wall clock when
        omitted). The values are copied, so the caller may reuse its dict.
        """
        buffer = self._buffer
        if len(buffer) < self._limit:  # the fast path: a dict, room in the buffer, not closed
            try:
                sample = values.copy()
                sample[_TS] = time.time_ns() if timestamp_ns is None else timestamp_ns
                buffer.append(sample)  # one untracked dict: no tuple for the garbage collector
                return
            except Exception:  # noqa: BLE001 - no .copy(): the slow path decides
                pass
        self._send_slowly(values, timestamp_ns)

    def _send_slowly(self, values: Any, timestamp_ns: Any) -> None:
        """send() when closed (ignored), full (dropped) or given a mapping without .copy()."""
        if self._closed:
            return
        if len(self._buffer) >= self._max_buffered:
            self._count_dropped(1)
            return
        try:
            sample = dict(values)
            sample[_TS] = time.time_ns() if timestamp_ns is None else timestamp_ns
            self._buffer.append(sample)
        except Exception:  # noqa: BLE001 - not a mapping: dropped, never raised into the simulation
            self._count_dropped(1)

    def flush(self, timeout: float = DEFAULT_CLOSE_TIMEOUT_S) -> bool:
        """Wait until every sample sent before this call is delivered or dropped; False on timeout."""
        with self._progress:
            target = self._taken + len(self._buffer)
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._progress:
            while self._done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return self._done >= target
                self._progress.wait(min(remaining, 0.1))
        return True

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT_S) -> None:
        """Ship what is buffered and stop, within `timeout` seconds; what is left then is dropped."""
        self._limit = 0
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abort = True
            call = self._call
            if call is not None:
                call.cancel()
            self._thread.join(1.0)
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001 - interpreter shutting down
            pass

    def __enter__(self) -> TelemetryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count_dropped(self, n: int) -> None:
        """Add to `dropped` (from the simulation's threads or the shipping thread)."""
        with self._drop_lock:
            self.dropped += n

    # ------------------------------------------------------------ the shipping thread

    def _run(self) -> None:
        """Shipping thread: connect lazily, ship rounds until closed and drained."""
        try:
            from . import _transport
            from . import telemetry_service_pb2 as pb

            publisher = _transport.connect(self.target, self._token, self._unix_path, self._call_timeout_s, pb)
        except Exception as exc:  # noqa: BLE001 - no usable transport: behave like the no-op client
            log.debug("telemetry disabled: %s", exc)
            self._limit = 0
            self._closed = True
            self._drop_rest()
            return
        reported_dropped = 0
        try:
            while not self._abort:
                if not self._closed and len(self._buffer) < self._round_size:
                    self._wake.wait(self._linger_s)  # let a round accumulate; flush()/close() cut it short
                    self._wake.clear()
                if self._buffer:
                    reported_dropped = self._ship_round(publisher, pb, self._take_round())
                elif self._closed:
                    if self.dropped > reported_dropped:  # tell the runner the final count
                        self._ship_round(publisher, pb, [])
                    return
        finally:
            self._drop_rest()
            publisher.close()

    def _take_round(self) -> list[dict[Any, Any]]:
        """Up to round_size samples from the front of the buffer."""
        popleft = self._buffer.popleft
        with self._progress:
            items = [popleft() for _ in range(min(len(self._buffer), self._round_size))]
            self._taken += len(items)
        return items

    def _ship_round(self, publisher: Any, pb: Any, items: list[dict[Any, Any]]) -> int:
        """Encode `items` and send them as one round; return the dropped count reported."""
        requests, encoded = self._encode(pb, items)
        reported = requests[-1].dropped_samples
        try:
            self._call = publisher
            if self._abort:
                raise TimeoutError("close() timed out")
            publisher.publish(requests)
            self.sent += encoded
        except Exception as exc:  # noqa: BLE001 - never crash the scenario
            log.debug("telemetry round to %s lost: %s", self.target, exc)
            self._count_dropped(encoded)
        finally:
            self._call = None
            self._finish(len(items))
        return reported

    def _encode(self, pb: Any, items: list[dict[Any, Any]]) -> tuple[list[Any], int]:
        """PublishRequests of up to batch_size samples; malformed samples are dropped and counted."""
        requests, bad = [], 0
        for start in range(0, max(len(items), 1), self._batch_size):
            request = pb.PublishRequest()
            bad += _add_blocks(request.blocks, items[start : start + self._batch_size])
            requests.append(request)
        encoded = len(items) - bad
        if bad:
            self._count_dropped(bad)
        for r in requests:
            r.dropped_samples = self.dropped
        return requests, encoded

    def _finish(self, n: int) -> None:
        """Record that n taken samples are delivered or dropped, waking flush() callers."""
        with self._progress:
            self._done += n
            self._progress.notify_all()

    def _drop_rest(self) -> None:
        """Count whatever is still buffered as dropped (the thread is stopping)."""
        with self._progress:
            n = len(self._buffer)
            self._buffer.clear()
            self._taken += n
        if n:
            self._count_dropped(n)
        self._finish(n)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TS = object()  # the key under which send() files the timestamp in its copy of the values


def _add_blocks(blocks: Any, items: list[dict[Any, Any]]) -> int:
    """Append `items` to a repeated SampleBlock field, one block per run of samples whose
    variables are the same, in the same order; return how many samples were unusable.

    Each copy holds the values then the timestamp (filed last by send()), so one
    `extend` of its values per sample gathers a row-major matrix whose last column
    is the timestamps. A run protobuf refuses as it is (numpy integers, whole-number
    float timestamps, ...) is converted sample by sample, leaving out what fails.
    """
    if not items:
        return 0
    keys = tuple(items[0])
    width = len(keys)
    if width > 1 and all(map(width.__eq__, map(len, items))):  # the common case: the same variables every time
        try:  # a KeyError means another variable set: take the general path
            flat = list(chain.from_iterable(map(itemgetter(*keys), items)))
        except KeyError:
            pass
        else:
            return _add_run(blocks, keys, flat, items)
    bad, start, keys = 0, 0, None
    flat = []
    for i, values in enumerate(items):
        row = tuple(values)
        if row != keys:
            if keys is not None:
                bad += _add_run(blocks, keys, flat, items[start:i])
            keys, start, flat = row, i, []
        flat.extend(values.values())
    if keys is not None:
        bad += _add_run(blocks, keys, flat, items[start:])
    return bad


def _add_run(blocks: Any, keys: tuple[Any, ...], flat: list[Any], run: list[dict[Any, Any]]) -> int:
    """One block from `flat` (rows of values + timestamp); return the samples left out."""
    width = len(keys)
    timestamps = flat[width - 1 :: width]
    del flat[width - 1 :: width]
    block = blocks.add()
    try:
        block.variables.extend(keys[:-1])
        block.timestamps_ns.extend(timestamps)
        block.values.extend(flat)
        return 0
    except Exception:  # noqa: BLE001 - converted one sample at a time below
        del blocks[-1]
    names = keys[:-1]
    if not all(isinstance(name, str) for name in names):
        return len(run)  # a variable name that is not a string: the whole run is unusable
    block, bad = blocks.add(variables=names), 0
    for values in run:
        try:
            ts = _timestamp(values[_TS])
            row = [float(values[name]) for name in names]
        except Exception:  # noqa: BLE001 - bad value or timestamp: dropped and counted
            bad += 1
            continue
        block.timestamps_ns.append(ts)
        block.values.extend(row)
    if not block.timestamps_ns:
        del blocks[-1]
    return bad


def _timestamp(ts: Any) -> int:
    """The sample's timestamp as an int64, or ValueError/TypeError."""
    if isinstance(ts, float) or not isinstance(ts, int):
        ts = int(ts)  # numpy integers, whole floats; raises on NaN, inf and strings like "soon"
    if not _INT64_MIN <= ts <= _INT64_MAX:
        raise ValueError("timestamp outside int64")
    return ts


def _strip_scheme(url: str) -> str:
    """host:port from host:port, grpc://host:port or http://host:port/; a query string
    (`?name=value&...`) is ignored here."""
    url = url.split("?", 1)[0]
    for scheme in ("grpc://", "http://"):
        if url.startswith(scheme):
            url = url[len(scheme) :]
    return url.rstrip("/")


def _split_url(url: str) -> tuple[str, str]:
    """(host:port, the job's secret) of `grpc://host:port?token=SECRET` (the secret may be absent)."""
    address, _, query = url.partition("?")
    token = ""
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == "token":
            token = value
    return _strip_scheme(address), token


def _unix_path(url: str) -> str:
    """The runner's Unix socket named by `unix=PATH` (percent-encoded) in the URL's query, or ""."""
    for pair in url.partition("?")[2].split("&"):
        key, _, value = pair.partition("=")
        if key == "unix" and value:
            from urllib.parse import unquote

            return unquote(value)
    return ""


def telemetry_client_from_env() -> TelemetryClient | NullTelemetryClient:
    """Return a client for TETRYX_TELEMETRY_URL, or a no-op client when it is unset."""
    url = os.environ.get(ENV_VAR, "").strip()
    if not url:
        return NullTelemetryClient()
    try:
        return TelemetryClient(url)
    except Exception:  # noqa: BLE001 - a broken environment must not stop the scenario
        return NullTelemetryClient()

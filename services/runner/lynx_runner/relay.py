"""Per-job telemetry relay: select, downsample, buffer and ship samples to telemetry-ingest.

The relay sits behind the per-job endpoint. `add_request()`, `add_all()` and
`add()` are synchronous and never wait, so the endpoint never waits on ingest.
`run_periodic()` ships the buffer every `buffer_flush_interval_seconds`, and
sooner when it is half full; while ingest is unreachable the samples stay
buffered (the outage spool), up to `MAX_BUFFERED` per job, beyond which the
OLDEST buffered messages are dropped (and counted in `dropped`). An outage never
raises into the job: a failed flush keeps its samples for the next one.

The buffer is a queue of PublishRequest messages. Without a variables filter or
downsampling, a request from the scenario is kept whole (only job_id and
batch_id are set; the client's columnar blocks travel on as they are), so
relaying costs no per-sample Python work; otherwise the selected samples are
gathered into requests of up to `CHUNK` samples. The first request of every
Publish stream carries the batch's `telemetry.storage` (a StorageTarget), so
ingest knows where the job's segments go.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable

import grpc

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_common.telemetry_blocks import sample_count

log = logging.getLogger(__name__)
MAX_BUFFERED = 500_000  # selected samples kept per job through an ingest outage; the oldest go first
CHUNK = 20_000  # samples per Publish call, about (a failed call is retried whole, at the next flush)
PUBLISH_DEADLINE_S = 30.0  # a periodic flush waits at most this long for ingest
FINAL_FLUSH_DEADLINE_S = 5.0  # the last flush of a job delays its result by at most this
DEFAULT_FLUSH_INTERVAL_S = 30.0  # when the batch's telemetry config leaves it at 0
EARLY_FLUSH_FRACTION = 0.5  # a buffer this full (of max_buffered) is shipped without waiting for the interval


class TelemetryRelay:
    """Keeps the samples the batch's telemetry config selects and ships them in batches."""

    def __init__(
        self,
        stub: pb_grpc.TelemetryServiceStub,
        job_id: str,
        batch_id: str,
        spec: cfg.TelemetryConfig,
        *,
        max_buffered: int = MAX_BUFFERED,
    ) -> None:
        self.stub = stub
        self.job_id = job_id
        self.batch_id = batch_id
        self.variables = tuple(dict.fromkeys(spec.variables))
        self.min_gap_ns = round(1e9 / spec.sampling_rate_hz) if spec.sampling_rate_hz > 0 else 0
        self.flush_interval = spec.buffer_flush_interval_seconds or DEFAULT_FLUSH_INTERVAL_S
        self.max_buffered = max_buffered
        storage = spec.storage
        self.storage = pb.StorageTarget(
            s3_bucket=storage.s3_bucket, s3_prefix=storage.s3_prefix, compression=storage.compression
        )
        self.received = 0  # samples offered by the endpoint
        self.selected = 0  # of those, samples kept by the variables filter and downsampling
        self.stored = 0  # samples telemetry-ingest acknowledged
        self.dropped = 0  # selected samples lost because the outage buffer was full
        self.buffered = 0  # samples waiting to be shipped
        self._last_kept_ns: int | None = None
        self._queue: deque[pb.PublishRequest] = deque()  # sealed requests, oldest first
        self._tail = self._new_request()  # selected samples still being gathered
        self._tail_count = 0  # samples in _tail (TelemetrySamples and block rows)
        self._lock = asyncio.Lock()
        self._outage = False
        self._high_water = max(1, int(max_buffered * EARLY_FLUSH_FRACTION))
        self._filling = asyncio.Event()  # set when the buffer reaches the high-water mark

    @property
    def selects_everything(self) -> bool:
        """True when every sample is stored as it is (no variables filter, no downsampling)."""
        return not self.variables and not self.min_gap_ns

    @property
    def lost(self) -> int:
        """Selected samples that will not reach ingest: dropped by the spool cap or still
        buffered (call it after the job's final flush)."""
        return self.dropped + self.buffered

    def stage_counts(self, client_dropped: int) -> dict[str, str]:
        """The job result's per-stage telemetry counts (JobResult.metadata entries)."""
        return {
            "telemetry_dropped_client": str(client_dropped),
            "telemetry_dropped_relay": str(self.dropped),
            "telemetry_unshipped": str(self.buffered),
            "telemetry_filtered": str(self.received - self.selected),
            "telemetry_stored": str(self.stored),
        }

    # ------------------------------------------------------------ taking samples in

    def add_request(self, request: pb.PublishRequest) -> None:
        """Take a scenario's PublishRequest (the relay may keep and modify it)."""
        if not self.selects_everything:
            self.add_blocks(request)
            return
        n = sample_count(request)
        self.received += n
        if not n:
            return
        self._seal_tail()
        request.job_id, request.batch_id, request.dropped_samples = self.job_id, self.batch_id, 0
        request.ClearField("storage")
        self._queue.append(request)
        self._grew(n)

    def add(self, sample: pb.TelemetrySample) -> None:
        """Select and buffer one sample (the watchdog sees it separately, unfiltered)."""
        self.add_all((sample,))

    def add_blocks(self, request: pb.PublishRequest) -> None:
        """Select and buffer the samples of a request, TelemetrySamples and blocks alike (blocks
        stay columnar: the selected rows and variables of a block are kept as a smaller block)."""
        self.add_all(request.samples)
        for block in request.blocks:
            rows = len(block.timestamps_ns)
            self.received += rows
            kept = self._select_block(block)
            if kept is None:
                continue
            self._tail.blocks.append(kept)
            self._tail_count += len(kept.timestamps_ns)
            self._grew(len(kept.timestamps_ns))
            if self._tail_count >= CHUNK:
                self._seal_tail()

    def _select_block(self, block: pb.SampleBlock) -> pb.SampleBlock | None:
        """The rows and variables of `block` to store, as a block; None when none are. The same
        choice as `_select` makes for each row as a sample: downsampling over the rows in order
        (a row without a chosen variable is dropped and does not count as kept)."""
        names = list(block.variables)
        width = len(names)
        if self.variables:
            wanted = set(self.variables)
            cols = [j for j, name in enumerate(names) if name in wanted]
            if not cols:
                return None
        else:
            cols = list(range(width))
        stamps = list(block.timestamps_ns)
        if self.min_gap_ns:
            rows, last, gap = [], self._last_kept_ns, self.min_gap_ns
            for i, ts in enumerate(stamps):
                if last is None or ts - last >= gap:
                    rows.append(i)
                    last = ts
            if not rows:
                return None
            stamps = [stamps[i] for i in rows]
        elif not stamps:
            return None
        else:
            rows = None  # every row
        self._last_kept_ns = stamps[-1]
        values = block.values
        if rows is None and len(cols) == width:
            chosen = list(values)
        elif len(cols) == width:
            chosen = [v for i in rows for v in values[i * width:(i + 1) * width]]
        else:
            chosen = [values[i * width + j] for i in (rows if rows is not None else range(len(stamps))) for j in cols]
        return pb.SampleBlock(variables=[names[j] for j in cols], timestamps_ns=stamps, values=chosen)

    def add_all(self, samples: Iterable[pb.TelemetrySample]) -> None:
        """Select and buffer samples, in order."""
        for sample in samples:
            self.received += 1
            kept = self._select(sample)
            if kept is not None:
                if self._tail.blocks:  # a request lists its samples before its blocks: start a new one
                    self._seal_tail()
                self._tail.samples.append(kept)
                self._tail_count += 1
                self._grew(1)
                if self._tail_count >= CHUNK:
                    self._seal_tail()

    def _select(self, sample: pb.TelemetrySample) -> pb.TelemetrySample | None:
        """The part of `sample` to store, or None: at most one sample per 1/rate s of sample time."""
        ts = sample.timestamp_ns
        if self.min_gap_ns and self._last_kept_ns is not None and ts - self._last_kept_ns < self.min_gap_ns:
            return None
        if self.variables:
            values = sample.values
            chosen = {name: values[name] for name in self.variables if name in values}
            if not chosen:
                return None
            if len(chosen) != len(values):
                sample = pb.TelemetrySample(timestamp_ns=ts, values=chosen)
        self._last_kept_ns = ts
        return sample

    def _new_request(self) -> pb.PublishRequest:
        return pb.PublishRequest(job_id=self.job_id, batch_id=self.batch_id)

    def _seal_tail(self) -> None:
        """Move the gathered samples to the queue (keeping order)."""
        if self._tail.samples or self._tail.blocks:
            self._queue.append(self._tail)
            self._tail = self._new_request()
            self._tail_count = 0

    def _grew(self, n: int) -> None:
        """Account for n more buffered samples: enforce the cap, wake the flusher when half full."""
        self.selected += n
        self.buffered += n
        self._enforce_cap()
        if self.buffered >= self._high_water and not self._outage:
            self._filling.set()

    def _enforce_cap(self) -> None:
        """Drop the oldest buffered samples beyond max_buffered, counting them."""
        overflow = self.buffered - self.max_buffered
        while overflow > 0:
            oldest = self._queue[0] if self._queue else self._tail
            size = sample_count(oldest)
            n = min(overflow, size)
            if n == 0:  # nothing left to drop (cannot happen while buffered counts the queue and tail)
                break
            if n == size and oldest is not self._tail:
                self._queue.popleft()
            else:
                _drop_front(oldest, n)
                if oldest is self._tail:
                    self._tail_count = sample_count(self._tail)
            self.buffered -= n
            self.dropped += n
            overflow -= n

    # ------------------------------------------------------------ shipping out

    async def flush(self, deadline_s: float = PUBLISH_DEADLINE_S) -> bool:
        """Ship everything buffered, waiting up to `deadline_s` in all for ingest to be reachable.

        Returns True when the buffer was emptied. On failure (or cancellation) the
        unshipped samples stay buffered for the next flush; nothing is raised
        except cancellation.
        """
        async with self._lock:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + deadline_s
            self._seal_tail()
            while self._queue:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                call = self._take_call()
                self.buffered -= sum(sample_count(r) for r in call)  # in flight, outside the cap
                if not await self._ship(call, remaining):
                    return False
                self._seal_tail()
            return True

    def _take_call(self) -> list[pb.PublishRequest]:
        """The oldest requests, up to about CHUNK samples (at least one request)."""
        call = [self._queue.popleft()]
        size = sample_count(call[0])
        while self._queue and size + (more := sample_count(self._queue[0])) <= CHUNK:
            call.append(self._queue.popleft())
            size += more
        call[0].storage.CopyFrom(self.storage)
        return call

    async def _ship(self, call: list[pb.PublishRequest], timeout: float) -> bool:
        """One Publish stream; on any failure put its requests back at the front of the queue."""
        n = sum(sample_count(r) for r in call)
        try:
            await self.stub.Publish(iter(call), timeout=timeout, wait_for_ready=True)
        except BaseException as exc:
            if isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                # ingest refuses these messages: sending them again cannot help, and must not block the rest
                log.error("telemetry ingest refused %d samples of job %s: %s", n, self.job_id, exc.details())
                self.dropped += n
                return True
            self._queue.extendleft(reversed(call))
            self.buffered += n
            self._enforce_cap()  # samples may have arrived meanwhile
            if not isinstance(exc, Exception):
                raise  # cancelled: the samples are back in the buffer for the final flush
            self._note_outage(exc)
            return False
        self.stored += n
        if self._outage:
            log.info("telemetry ingest reachable again for job %s", self.job_id)
            self._outage = False
        return True

    def _note_outage(self, exc: Exception) -> None:
        """Log the start of an outage once, not at every flush."""
        if not self._outage:
            reason = exc.code().name if hasattr(exc, "code") else type(exc).__name__
            log.warning("telemetry ingest unavailable for job %s (%s); buffering up to %d samples",
                        self.job_id, reason, self.max_buffered)
            self._outage = True

    async def run_periodic(self) -> None:
        """Flush every buffer_flush_interval_seconds, or as soon as the buffer is half full
        (while ingest is reachable), until cancelled."""
        while True:
            try:
                await asyncio.wait_for(self._filling.wait(), self.flush_interval)
            except TimeoutError:
                pass
            self._filling.clear()
            try:
                await self.flush(PUBLISH_DEADLINE_S)
            except Exception:  # noqa: BLE001 - telemetry never fails a job
                log.exception("telemetry flush for job %s failed", self.job_id)


def _drop_front(request: pb.PublishRequest, n: int) -> None:
    """Remove the first n samples of a request: TelemetrySamples first, then block rows."""
    k = min(n, len(request.samples))
    del request.samples[:k]
    n -= k
    for block in request.blocks:
        if n <= 0:
            break
        k = min(n, len(block.timestamps_ns))
        del block.timestamps_ns[:k]
        del block.values[: k * len(block.variables)]
        n -= k

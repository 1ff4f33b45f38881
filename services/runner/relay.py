"""Per-job telemetry relay: filter, downsample, buffer and ship samples to telemetry-ingest."""

from __future__ import annotations

import asyncio
import logging

import grpc
from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)
MAX_BUFFERED = 500_000  # samples kept through an ingest outage; older ones are dropped first
CHUNK = 1000
PUBLISH_DEADLINE_S = 30.0
FINAL_FLUSH_DEADLINE_S = 5.0  # the last flush of a job delays its result by at most this


class TelemetryRelay:
    """Keeps the samples the batch's telemetry config selects and ships them in batches."""

    def __init__(self, stub: pb_grpc.TelemetryServiceStub, job_id: str, batch_id: str, spec: cfg.TelemetryConfig):
        self.stub = stub
        self.job_id = job_id
        self.batch_id = batch_id
        self.variables = frozenset(spec.variables)
        self.min_gap_ns = int(1e9 / spec.sampling_rate_hz) if spec.sampling_rate_hz > 0 else 0
        self.flush_interval = spec.buffer_flush_interval_seconds or 30.0
        self._last_kept_ns: int | None = None
        self._buffer: list[pb.TelemetrySample] = []
        self.received = 0
        self.stored = 0
        self.dropped = 0
        self._lock = asyncio.Lock()

    def add(self, sample: pb.TelemetrySample) -> None:
        """Select and buffer one sample (the watchdog sees it separately, unfiltered)."""
        self.received += 1
        ts = sample.timestamp_ns
        if self.min_gap_ns and self._last_kept_ns is not None and ts - self._last_kept_ns < self.min_gap_ns:
            return
        values = sample.values
        if self.variables:
            values = {k: v for k, v in values.items() if k in self.variables}
            if not values:
                return
        self._last_kept_ns = ts
        self._buffer.append(pb.TelemetrySample(timestamp_ns=ts, values=values))
        if len(self._buffer) > MAX_BUFFERED:
            overflow = len(self._buffer) - MAX_BUFFERED
            del self._buffer[:overflow]
            self.dropped += overflow

    async def flush(self, deadline_s: float = PUBLISH_DEADLINE_S) -> None:
        """Ship everything buffered, waiting up to `deadline_s` for ingest to be reachable; on
        failure keep it for the next flush (an outage never fails a job)."""
        async with self._lock:
            if not self._buffer:
                return
            samples, self._buffer = self._buffer, []
            requests = [
                pb.PublishRequest(job_id=self.job_id, batch_id=self.batch_id, samples=samples[i : i + CHUNK])
                for i in range(0, len(samples), CHUNK)
            ]
            try:
                await self.stub.Publish(iter(requests), timeout=deadline_s, wait_for_ready=True)
                self.stored += len(samples)
            except grpc.aio.AioRpcError as exc:
                log.warning("telemetry ingest unavailable for job %s (%s); keeping %d samples",
                            self.job_id, exc.code().name, len(samples))
                self._buffer[:0] = samples

    async def run_periodic(self) -> None:
        """Flush every buffer_flush_interval_seconds until cancelled."""
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

"""The per-job telemetry endpoint a scenario publishes to (TETRYX_TELEMETRY_URL)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator
from urllib.parse import quote

import grpc

from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_common.security import bearer
from lynx_common.telemetry_blocks import drop_malformed_blocks, iter_samples, sample_count
from lynx_runner.relay import TelemetryRelay
from lynx_runner.watchdog import Watchdog


class JobTelemetryServicer(tel_grpc.TelemetryServiceServicer):
    """Feeds every published sample to the watchdog, then to the relay; never waits on ingest.

    `received` counts the samples the scenario delivered; `dropped` is the largest
    `dropped_samples` the scenario's client reported (its cumulative count);
    `malformed` counts the samples of unreadable columnar blocks, dropped here.
    """

    def __init__(self, watchdog: Watchdog, relay: TelemetryRelay, secret: str | None = None) -> None:
        self.secret = secret  # when set, a publisher must send it (`authorization: Bearer <secret>`)
        self.watchdog = watchdog
        self.relay = relay
        self.received = 0
        self.dropped = 0
        self.malformed = 0

    @property
    def lost(self) -> int:
        """Samples lost before the relay: dropped by the client or unreadable here."""
        return self.dropped + self.malformed

    async def Publish(
        self, request_iterator: AsyncIterator[tel_pb.PublishRequest], context: grpc.aio.ServicerContext
    ) -> tel_pb.PublishResponse:
        presented = bearer(context.invocation_metadata())
        if self.secret is not None and not hmac.compare_digest(presented, self.secret):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "this endpoint takes telemetry from its own job only (token in TETRYX_TELEMETRY_URL)")
        accepted = 0
        async for request in request_iterator:
            self.take(request)
            accepted += sample_count(request)
        return tel_pb.PublishResponse(accepted_samples=accepted)

    def take(self, request: tel_pb.PublishRequest) -> None:
        """Count, watch and relay one request's samples, in order (gRPC Publish and the Unix socket alike)."""
        self.malformed += drop_malformed_blocks(request)
        if self.watchdog.active:  # without conditions observe() keeps nothing: skip the dict copies
            observe = self.watchdog.observe
            for timestamp_ns, values in iter_samples(request):
                observe(timestamp_ns, values)
        self.received += sample_count(request)
        if request.dropped_samples > self.dropped:
            self.dropped = request.dropped_samples
        self.relay.add_request(request)  # last: the relay may keep and modify the request


def job_secret() -> str:
    """A fresh secret for one job's endpoint."""
    return secrets.token_urlsafe(24)


def telemetry_url(address: str, secret: str, unix_path: str | None = None) -> str:
    """TETRYX_TELEMETRY_URL: the endpoint's address and the job's secret, which the client library sends,
    and the job's Unix socket (`unix=`, percent-encoded) when it has one."""
    url = f"grpc://{address}?token={secret}"
    return f"{url}&unix={quote(unix_path, safe='/')}" if unix_path else url

"""The per-job telemetry endpoint a scenario publishes to (TETRYX_TELEMETRY_URL)."""

from __future__ import annotations

from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_runner.relay import TelemetryRelay
from lynx_runner.watchdog import Watchdog


class JobTelemetryServicer(tel_grpc.TelemetryServiceServicer):
    """The per-job endpoint a scenario publishes to: feeds the watchdog and the relay."""

    def __init__(self, watchdog: Watchdog, relay: TelemetryRelay) -> None:
        self.watchdog = watchdog
        self.relay = relay

    async def Publish(self, request_iterator, context) -> tel_pb.PublishResponse:
        accepted = 0
        async for request in request_iterator:
            for sample in request.samples:
                self.watchdog.observe(sample.timestamp_ns, dict(sample.values))
                self.relay.add(sample)
            accepted += len(request.samples)
        return tel_pb.PublishResponse(accepted_samples=accepted)

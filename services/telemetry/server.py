"""TelemetryService over gRPC: Publish into SQLite, Query back out."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
from pathlib import Path

import grpc
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_common.server import GrpcServer, configure_logging, serve_until_signalled
from lynx_telemetry.store import TelemetryStore

log = logging.getLogger(__name__)
MAX_QUERY_POINTS = 1_000_000


class TelemetryServicer(pb_grpc.TelemetryServiceServicer):
    """Stores every published batch; NaN and infinities are skipped (SQLite has no place for them)."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store

    async def Publish(self, request_iterator, context) -> pb.PublishResponse:
        accepted = 0
        async for request in request_iterator:
            if not request.job_id:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "job_id is required")
            rows = [
                (request.job_id, name, s.timestamp_ns, value, request.batch_id)
                for s in request.samples
                for name, value in s.values.items()
                if math.isfinite(value)
            ]
            await self.store.append(rows)
            accepted += len(request.samples)
        return pb.PublishResponse(accepted_samples=accepted)

    async def Query(self, request: pb.QueryRequest, context) -> pb.QueryResponse:
        if not request.job_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "job_id is required")
        if request.limit < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "limit must not be negative")
        series = await self.store.query(
            request.job_id,
            list(request.variables),
            request.start_ns if request.HasField("start_ns") else None,
            request.end_ns if request.HasField("end_ns") else None,
            min(request.limit or MAX_QUERY_POINTS, MAX_QUERY_POINTS),
        )
        return pb.QueryResponse(
            series=[
                pb.Series(variable=name, timestamps_ns=times, values=values)
                for name, (times, values) in sorted(series.items())
            ]
        )


async def run(host: str, port: int, data_dir: Path) -> None:
    """Open the store and serve until signalled."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = await TelemetryStore.open(data_dir / "telemetry.db")
    server = GrpcServer(
        lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(store), s),
        [pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name],
        host,
        port,
    )
    await serve_until_signalled(server, store.close)


def main(argv: list[str] | None = None) -> None:
    """Run telemetry-ingest until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="lynx-telemetry", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50053)
    parser.add_argument("--data-dir", type=Path, default=Path(".lynx"))
    args = parser.parse_args(argv)
    configure_logging()
    asyncio.run(run(args.host, args.port, args.data_dir))


if __name__ == "__main__":
    main()

"""TelemetryService over gRPC: Publish into columnar segments and to live subscribers; Query, Subscribe, Export."""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import csv
import io
import json
import logging
import math
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc

from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_common import limits, security
from lynx_common.server import GrpcServer, configure_logging, serve_until_signalled
from lynx_common.status import abort_invalid
from lynx_common.telemetry_blocks import block_problem, iter_block, sample_count
from lynx_common.telemetry_storage import parquet_codec
from lynx_telemetry import columns
from lynx_telemetry.hub import Hub
from lynx_telemetry.store import TelemetryStore

log = logging.getLogger(__name__)


PAGE_POINTS = 200_000  # points per QueryResponse by default (about 3.2 MB: under gRPC's default 4 MB)
MAX_PAGE_POINTS = 1_000_000  # the most a caller may ask for in one response
PAGED_QUERIES = 8  # queries whose series are kept between pages (the most recent ones)
PAGED_TTL_S = 60.0  # ... for at most this long; a later page past it reads the segments again
EXPORT_CHUNK_BYTES = 256 * 1024  # bytes per ExportResponse (before the last one)
COMPRESSIONS = ("", "gzip")


class TelemetryServicer(pb_grpc.TelemetryServiceServicer):
    """Stores every published batch; NaN and infinities are skipped."""

    def __init__(self, store: TelemetryStore, hub: Hub | None = None,
                 verifier: security.RemoteVerifier | None = None) -> None:
        self.store = store
        self.rates = limits.TokenBuckets(max_keys=100_000)  # samples per job
        self.hub = hub or Hub()
        self.verifier = verifier  # with auth: Publish only for jobs the caller's runner holds
        self._paged: OrderedDict[tuple, tuple[float, dict]] = OrderedDict()  # query -> (time, series) being paged

    async def Publish(self, request_iterator, context) -> pb.PublishResponse:
        accepted = 0
        rate = limits.value("publish_samples_per_second")
        async for request in request_iterator:
            if not request.job_id:
                await abort_invalid(context, "job_id", "is required")
            if self.verifier is not None:
                await security.check_holds_job(self.verifier, context, request.job_id)
            for i, block in enumerate(request.blocks):
                if (problem := block_problem(block)) is not None:
                    await abort_invalid(context, f"blocks[{i}]", problem)
            try:
                parquet_codec(request.storage.compression)
            except ValueError as exc:  # the scheduler refuses it at submit; a relay of another version might not
                await abort_invalid(context, "storage.compression", str(exc))
            if not self.rates.take(request.job_id, sample_count(request), rate):
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"job {request.job_id} publishes more than {rate} telemetry samples per second "
                                    f"(LYNX_LIMIT_PUBLISH_SAMPLES_PER_SECOND); {accepted} were accepted")
            await self.store.append_request(request)
            if self.hub.subscriptions:
                self.hub.publish(request.job_id, request.batch_id, _finite(_as_samples(request)))
            accepted += len(request.samples) + sum(len(b.timestamps_ns) for b in request.blocks)
        return pb.PublishResponse(accepted_samples=accepted)

    async def Query(self, request: pb.QueryRequest, context) -> pb.QueryResponse:
        if not request.job_id:
            await abort_invalid(context, "job_id", "is required")
        if request.limit < 0:
            await abort_invalid(context, "limit", "must not be negative")
        if not 0 <= request.page_points <= MAX_PAGE_POINTS:
            await abort_invalid(context, "page_points", f"must be between 0 and {MAX_PAGE_POINTS:,}")
        cursor = None
        if request.page_token:
            try:
                name, after_ns = json.loads(base64.urlsafe_b64decode(request.page_token.encode()))
                cursor = (str(name), int(after_ns))
            except (ValueError, TypeError, binascii.Error):
                await abort_invalid(context, "page_token", "is not a token from a previous QueryResponse")
        start_ns, end_ns = await _time_window(request, context)
        key = (request.job_id, tuple(request.variables), start_ns, end_ns)
        cached = self._paged.get(key) if cursor is not None else None
        if cached is not None and time.monotonic() - cached[0] < PAGED_TTL_S:
            found = cached[1]  # the next page of a series read for the first: one read per paged query
        else:
            found = await self.store.arrays(request.job_id, list(request.variables), start_ns, end_ns)
        response = _page(found, request.limit, cursor, request.page_points or PAGE_POINTS)
        self._paged.pop(key, None)
        if response.next_page_token:
            self._paged[key] = (time.monotonic(), found)
            while len(self._paged) > PAGED_QUERIES:
                self._paged.popitem(last=False)
        return response

    async def Subscribe(self, request: pb.SubscribeRequest, context) -> AsyncIterator[pb.SubscribeResponse]:
        """Samples published from now on; the response headers mean the subscription is live."""
        if not request.batch_id and not request.job_id:
            await abort_invalid(context, "batch_id or job_id", "is required")
        sub = self.hub.subscribe(request.batch_id, request.job_id, list(request.variables))
        try:
            await context.send_initial_metadata(())
            while True:
                yield await sub.queue.get()
        finally:
            self.hub.unsubscribe(sub)

    async def Export(self, request: pb.ExportRequest, context) -> AsyncIterator[pb.ExportResponse]:
        """Stored samples as CSV (job_id,timestamp_ns,variable,value), in chunks, gzip when asked."""
        if not request.job_id and not request.batch_id:
            await abort_invalid(context, "job_id or batch_id", "is required")
        if request.compression not in COMPRESSIONS:
            await abort_invalid(context, "compression", f'must be "" or "gzip", not {request.compression!r}')
        start_ns, end_ns = await _time_window(request, context)
        pages = self.store.export_rows(request.job_id, request.batch_id, list(request.variables), start_ns, end_ns)
        async with contextlib.aclosing(pages):  # closes the export's connection even when the client leaves
            async for chunk in _csv_chunks(pages, request.compression == "gzip"):
                yield pb.ExportResponse(data=chunk)


def _page(found, limit: int, cursor: tuple[str, int] | None, budget: int) -> pb.QueryResponse:
    """One page of series (sorted by name), at most `budget` points, continuing after `cursor`."""
    response = pb.QueryResponse()
    for name, (times, values) in found.items():
        if limit:
            times, values = times[:limit], values[:limit]
        if cursor is not None:
            if name < cursor[0]:
                continue
            if name == cursor[0]:
                start = int(times.searchsorted(cursor[1], "right"))
                times, values = times[start:], values[start:]
        if not len(times):
            continue
        if budget == 0 or len(times) > budget:
            if budget:
                response.series.add(variable=name, timestamps_ns=times[:budget].tolist(),
                                    values=values[:budget].tolist())
                last = (name, int(times[budget - 1]))
            else:
                last = (response.series[-1].variable, response.series[-1].timestamps_ns[-1])
            response.next_page_token = base64.urlsafe_b64encode(json.dumps(last).encode()).decode()
            break
        response.series.add(variable=name, timestamps_ns=times.tolist(), values=values.tolist())
        budget -= len(times)
    return response


def _as_samples(request: pb.PublishRequest) -> list[pb.TelemetrySample]:
    """A request's samples and block rows as TelemetrySamples (for live subscribers)."""
    samples = list(request.samples)
    for block in request.blocks:
        samples.extend(pb.TelemetrySample(timestamp_ns=ts, values=values) for ts, values in iter_block(block))
    return samples


def _finite(samples: Sequence[pb.TelemetrySample]) -> Sequence[pb.TelemetrySample]:
    """The samples as stored: without NaN or infinite values (and without samples left empty)."""
    isfinite = math.isfinite
    if all(isfinite(v) for s in samples for v in s.values.values()):
        return samples
    clean = []
    for sample in samples:
        values = {k: v for k, v in sample.values.items() if isfinite(v)}
        if values:
            clean.append(pb.TelemetrySample(timestamp_ns=sample.timestamp_ns, values=values))
    return clean


async def _time_window(request, context) -> tuple[int | None, int | None]:
    """The optional start_ns/end_ns of a request; INVALID_ARGUMENT when start is after end."""
    start_ns = request.start_ns if request.HasField("start_ns") else None
    end_ns = request.end_ns if request.HasField("end_ns") else None
    if start_ns is not None and end_ns is not None and start_ns > end_ns:
        await abort_invalid(context, "start_ns", "must not be after end_ns")
    return start_ns, end_ns


async def _csv_chunks(pages: AsyncIterator[list], gzip: bool) -> AsyncIterator[bytes]:
    """CSV bytes (header first) of the rows in `pages`, about EXPORT_CHUNK_BYTES at a time."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None  # wbits 31: gzip container
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("job_id", "timestamp_ns", "variable", "value"))
    pending: list[bytes] = []
    size = 0
    async for page in pages:
        writer.writerows(page)
        data = text.getvalue().encode()
        text.seek(0)
        text.truncate()
        if compressor is not None:
            data = compressor.compress(data)
        pending.append(data)
        size += len(data)
        if size >= EXPORT_CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(text.getvalue().encode())
    if compressor is not None:
        pending[-1] = compressor.compress(pending[-1]) + compressor.flush()
    yield b"".join(pending)


async def run(host: str, port: int, data_dir: Path, args: argparse.Namespace | None = None) -> None:
    """Open the store and serve until signalled."""
    secure = security.server_security(args) if args is not None else security.ServerSecurity()
    security.check_exposure("lynx-telemetry", host, secure)
    verifier = security.remote_verifier(args) if args is not None else None
    data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(columns.warm_up, parquet_codec(""))  # not in the first job's time
    store = await TelemetryStore.open(data_dir / "telemetry.db")
    flusher = asyncio.create_task(store.run_flusher())

    async def stop() -> None:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        await store.close()

    server = GrpcServer(
        lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(store, verifier=verifier), s),
        [pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name],
        host,
        port,
        secure,
        verifier,
    )
    await serve_until_signalled(server, stop)


def main(argv: list[str] | None = None) -> None:
    """Run telemetry-ingest until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="lynx-telemetry", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50053)
    parser.add_argument("--data-dir", type=Path, default=Path(".lynx"))
    security.add_server_args(parser)
    args = parser.parse_args(argv)
    configure_logging()
    asyncio.run(run(args.host, args.port, args.data_dir, args))


if __name__ == "__main__":
    main()

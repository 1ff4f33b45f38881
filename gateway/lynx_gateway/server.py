"""The HTTP gateway (aiohttp): REST routes over the scheduler's and telemetry's gRPC."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

import grpc
from aiohttp import web

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_common import limits, names
from lynx_common.errors import ValidationError
from lynx_common.rest import INT_RANGE, F, to_json
from lynx_common.run_config import run_configs_csv
from lynx_common.server import configure_logging
from lynx_common.status import validation_error
from lynx_gateway import artifacts, convert, dashboard, errors, readiness, results
from lynx_gateway import security as guard
from lynx_gateway.openapi import SPEC

log = logging.getLogger(__name__)
DEADLINE_S = 30.0
SUBMIT_DEADLINE_S = 300.0
STREAM_POLL_S = 2.0  # how often a live stream checks whether its batch has finished
INT32, INT64 = INT_RANGE[F.TYPE_INT32], INT_RANGE[F.TYPE_INT64]  # the bounds of the proto fields they fill
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.OUT_OF_RANGE: 400,
}


@web.middleware
async def errors_middleware(request: web.Request, handler):
    """gRPC and validation errors become JSON errors with the right HTTP status."""
    try:
        return await handler(request)
    except ValidationError as exc:
        return errors.error_response(400, str(exc), exc.field)
    except grpc.aio.AioRpcError as exc:
        status = _HTTP_STATUS.get(exc.code(), 502)
        message = exc.details() or exc.code().name
        invalid = validation_error(exc) if exc.code() == grpc.StatusCode.INVALID_ARGUMENT else None
        return errors.error_response(status, message, invalid.field if invalid else None)


class Gateway:
    """Route handlers; one channel per backend."""

    def __init__(self, scheduler_addr: str, telemetry_addr: str, auth: bool = False, sampler_addr: str = "") -> None:
        self.scheduler_addr = scheduler_addr
        self.telemetry_addr = telemetry_addr
        self.sampler_addr = sampler_addr
        self.tokens = guard.TokenRoutes(auth)
        self.streams = errors.StreamSlots()

    async def open(self, _app: web.Application | None = None) -> None:
        """Create the channels inside the serving loop (grpc.aio binds them to it)."""
        self.scheduler_channel = guard.channel(self.scheduler_addr)  # TLS from LYNX_TLS_*, the caller's token
        self.telemetry_channel = guard.channel(self.telemetry_addr)
        self.tokens.bind(self.scheduler_channel)
        self.scheduler = pb_grpc.SchedulerServiceStub(self.scheduler_channel)
        self.telemetry = tel_grpc.TelemetryServiceStub(self.telemetry_channel)
        self.readiness = readiness.Readiness({"scheduler": self.scheduler_channel, "telemetry": self.telemetry_channel,
                                              **({"sampler": guard.channel(self.sampler_addr)}
                                                 if self.sampler_addr else {})})

    async def close(self, _app: web.Application | None = None) -> None:
        await self.readiness.close(keep=(self.scheduler_channel, self.telemetry_channel))
        await self.scheduler_channel.close()
        await self.telemetry_channel.close()

    async def submit(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        reply = await self.scheduler.SubmitBatch(convert.submit_request(body), timeout=SUBMIT_DEADLINE_S)
        return web.json_response(to_json(reply))

    async def preview(self, request: web.Request) -> web.Response:
        fmt = request.query.get("format", "json")
        if fmt not in ("json", "csv"):
            raise ValidationError("format", f"must be json or csv, got {fmt!r}")
        body = await _json_body(request)
        call = self.scheduler.Preview(convert.preview_request(body), timeout=SUBMIT_DEADLINE_S)
        document = convert.preview_json([chunk async for chunk in call])
        if fmt == "csv":
            return web.Response(text=run_configs_csv(document["run_configs"]), content_type="text/csv")
        return web.json_response(document)

    async def extend_batch(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        reply = await self.scheduler.ExtendBatch(
            convert.extend_request(request.match_info["id"], body), timeout=SUBMIT_DEADLINE_S
        )
        return web.json_response(to_json(reply))

    async def rerun_failed(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.RerunFailed(
            pb.RerunFailedRequest(batch_id=request.match_info["id"]), timeout=DEADLINE_S
        )
        return web.json_response(to_json(reply))

    async def list_batches(self, request: web.Request) -> web.Response:
        limit = _int_query(request, "limit", 100, INT32)
        reply = await self.scheduler.ListBatches(pb.ListBatchesRequest(limit=limit), timeout=DEADLINE_S)
        return web.json_response(to_json(reply))

    async def get_batch(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.GetBatch(pb.GetBatchRequest(batch_id=request.match_info["id"]), timeout=DEADLINE_S)
        return web.json_response(to_json(reply.batch))

    async def cancel_batch(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.CancelBatch(
            pb.CancelBatchRequest(batch_id=request.match_info["id"]), timeout=DEADLINE_S
        )
        return web.json_response(to_json(reply))

    async def batch_results(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.GetBatchResults(
            pb.GetBatchResultsRequest(batch_id=request.match_info["id"]), timeout=DEADLINE_S
        )
        return web.json_response(to_json(reply)["results"])

    async def list_jobs(self, request: web.Request) -> web.Response:
        page = pb.ListJobsRequest(batch_id=request.match_info["id"], page_token=request.query.get("page_token", ""),
                                  page_size=_int_query(request, "limit", limits.value("page_size"),
                                                       (1, limits.value("max_page_size"))))
        reply = await self.scheduler.ListJobs(page, timeout=DEADLINE_S)
        return web.json_response(to_json(reply))

    async def get_job(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.GetJob(pb.GetJobRequest(job_id=request.match_info["id"]), timeout=DEADLINE_S)
        return web.json_response(to_json(reply.job))

    async def job_results(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.GetJob(pb.GetJobRequest(job_id=request.match_info["id"]), timeout=DEADLINE_S)
        job = reply.job
        if job.status not in (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED):
            status = names.JOB_STATUS.name(job.status)
            return errors.error_response(409, f"job {job.job_id} has no final result yet (status {status})")
        return web.json_response(to_json(job.result))

    async def job_telemetry(self, request: web.Request) -> web.Response:
        job_id = request.match_info["id"]
        query = tel_pb.QueryRequest(
            job_id=job_id, variables=request.query.getall("variable", []), limit=_int_query(request, "limit", 0, INT32)
        )
        for name in ("start_ns", "end_ns"):
            if name in request.query:
                setattr(query, name, _int_query(request, name, 0))
        reply = tel_pb.QueryResponse()
        while True:  # follow the pages: a long series spans several responses
            page = await self.telemetry.Query(query, timeout=DEADLINE_S)
            convert.merge_telemetry_page(reply, page)
            if not page.next_page_token:
                break
            query.page_token = page.next_page_token
        return web.json_response(convert.telemetry_json(job_id, reply))

    async def _export(self, request: web.Request, export: tel_pb.ExportRequest, stored_compression: str,
                      name: str) -> web.StreamResponse:
        """Stream the CSV; ?compression= when given, else the batch's telemetry.storage.compression."""
        # the batch's storage compression names the segments' codec; the export default is gzip or plain CSV
        export.compression = request.query.get("compression", "gzip" if stored_compression == "gzip" else "")
        export.variables.extend(request.query.getall("variable", []))
        for field in ("start_ns", "end_ns"):
            if field in request.query:
                setattr(export, field, _int_query(request, field, 0))
        call = self.telemetry.Export(export, timeout=SUBMIT_DEADLINE_S)
        first = await call.read()  # errors surface here, before any byte is sent
        gz = export.compression == "gzip"
        response = web.StreamResponse(
            headers={
                "content-type": "application/gzip" if gz else "text/csv",
                "content-disposition": f'attachment; filename="{name}.csv{".gz" if gz else ""}"',
            }
        )
        await response.prepare(request)
        chunk = first
        while chunk is not grpc.aio.EOF:
            await response.write(chunk.data)
            chunk = await call.read()
        await response.write_eof()
        return response

    async def _batch(self, batch_id: str) -> pb.Batch:
        return (await self.scheduler.GetBatch(pb.GetBatchRequest(batch_id=batch_id), timeout=DEADLINE_S)).batch

    async def job_telemetry_export(self, request: web.Request) -> web.StreamResponse:
        job = (await self.scheduler.GetJob(pb.GetJobRequest(job_id=request.match_info["id"]), timeout=DEADLINE_S)).job
        batch = await self._batch(job.batch_id)
        return await self._export(request, tel_pb.ExportRequest(job_id=job.job_id),
                                  batch.config.telemetry.storage.compression, f"telemetry-{job.job_id}")

    async def batch_telemetry_export(self, request: web.Request) -> web.StreamResponse:
        batch = await self._batch(request.match_info["id"])  # 404 for an unknown batch; the file name is its id
        return await self._export(request, tel_pb.ExportRequest(batch_id=batch.batch_id),
                                  batch.config.telemetry.storage.compression, f"telemetry-{batch.batch_id}")

    async def batch_telemetry_stream(self, request: web.Request) -> web.StreamResponse:
        """Live samples of a batch as newline-delimited JSON, until the client hangs up."""
        batch_id = request.match_info["id"]
        try:
            with self.streams.slot(request.remote or ""):
                return await self._stream(request, batch_id)
        except errors.TooManyStreams as exc:
            return errors.error_response(429, str(exc))

    async def _stream(self, request: web.Request, batch_id: str) -> web.StreamResponse:
        """The stream of one batch; it ends when the batch is finished (or the client hangs up)."""
        batch = await self._batch(batch_id)  # 404 early
        subscribe = tel_pb.SubscribeRequest(
            batch_id=batch_id, job_id=request.query.get("job_id", ""), variables=request.query.getall("variable", [])
        )
        response = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        if _finished(batch):
            await response.prepare(request)
            await response.write_eof()
            return response
        call = self.telemetry.Subscribe(subscribe)
        await response.prepare(request)
        watcher = asyncio.create_task(self._end_when_finished(batch_id, call))
        try:
            async for reply in call:
                lines = "".join(
                    json.dumps({"job_id": reply.job_id, "timestamp_ns": s.timestamp_ns, "values": dict(s.values)})
                    + "\n"
                    for s in reply.samples
                )
                await response.write(lines.encode())
        except (ConnectionResetError, grpc.aio.AioRpcError):
            pass
        except asyncio.CancelledError:
            if not (watcher.done() and not watcher.cancelled()):
                raise  # the handler itself is being cancelled
            # else the batch finished: the watcher cancelled the call, and the stream ends cleanly
        finally:
            watcher.cancel()
            call.cancel()
        return response

    async def _end_when_finished(self, batch_id: str, call) -> None:
        """Cancel the live stream once the batch is finished: no stream outlives its batch."""
        while True:
            await asyncio.sleep(STREAM_POLL_S)
            try:
                if _finished(await self._batch(batch_id)):
                    call.cancel()
                    return
            except grpc.aio.AioRpcError:
                continue

    async def list_runners(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.ListRunners(pb.ListRunnersRequest(), timeout=DEADLINE_S)
        return web.json_response(to_json(reply))

    async def get_runner(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.GetRunner(
            pb.GetRunnerRequest(runner_id=request.match_info["id"]), timeout=DEADLINE_S
        )
        return web.json_response(to_json(reply.runner))

    async def health(self, request: web.Request) -> web.Response:
        """Liveness: the gateway answers (whatever its backends do)."""
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        """Readiness: 200 only when every backend reports SERVING over grpc.health.v1, else 503 naming them."""
        waiting = await self.readiness.not_ready()
        if waiting:
            return errors.error_response(503, "not ready: " + "; ".join(f"{n} {why}" for n, why in waiting.items()))
        return web.json_response({"status": "ready"})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(SPEC)


async def _json_body(request: web.Request) -> object:
    try:
        document = json.loads(await request.text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationError("body", "is not valid JSON") from None
    except RecursionError:
        raise ValidationError("body", f"is nested deeper than {limits.value('json_depth')} levels "
                                      "(LYNX_LIMIT_JSON_DEPTH)") from None
    limits.check_json(document)
    return document


def _finished(batch: pb.Batch) -> bool:
    return batch.status in (pb.BATCH_STATUS_COMPLETED, pb.BATCH_STATUS_FAILED, pb.BATCH_STATUS_CANCELLED)


def _int_query(request: web.Request, name: str, default: int, bounds: tuple[int, int] = INT64) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not bounds[0] <= value <= bounds[1]:
        raise ValidationError(name, f"must be a whole number from {bounds[0]} to {bounds[1]}, got {raw!r}")
    return value


def build_app(scheduler_addr: str, telemetry_addr: str, auth: bool = False,
              allowed_hosts: frozenset[str] | None = None, sampler_addr: str = "") -> web.Application:
    """The aiohttp application with every route; `auth`: every route but health needs a bearer token."""
    gw = Gateway(scheduler_addr, telemetry_addr, auth, sampler_addr)
    hosts = allowed_hosts or guard.allowed_hosts("127.0.0.1", [])
    app = web.Application(middlewares=[errors_middleware, guard.middleware(auth, hosts)],
                          client_max_size=limits.value("http_body_bytes"))
    errors.install(app)  # JSON errors and the rate limit outermost, so 401/403/404/405/413 are JSON too
    app.add_routes(
        [
            web.post("/jobs", gw.submit),
            web.post("/preview", gw.preview),
            web.post("/batches/{id}/extend", gw.extend_batch),
            web.post("/batches/{id}/rerun-failed", gw.rerun_failed),
            web.get("/batches", gw.list_batches),
            web.get("/batches/{id}", gw.get_batch),
            web.post("/batches/{id}/cancel", gw.cancel_batch),
            web.get("/batches/{id}/results", gw.batch_results),
            web.get("/batches/{id}/jobs", gw.list_jobs),
            web.get("/jobs/{id}", gw.get_job),
            web.get("/jobs/{id}/results", gw.job_results),
            web.get("/jobs/{id}/telemetry", gw.job_telemetry),
            web.get("/jobs/{id}/telemetry/export", gw.job_telemetry_export),
            web.get("/batches/{id}/telemetry/export", gw.batch_telemetry_export),
            web.get("/batches/{id}/telemetry/stream", gw.batch_telemetry_stream),
            web.get("/runners", gw.list_runners),
            web.get("/runners/{id}", gw.get_runner),
            web.get("/healthz", gw.health),
            web.get("/readyz", gw.ready),
            web.get("/openapi.json", gw.openapi),
            *gw.tokens.routes(),
        ]
    )
    artifacts.add_routes(app, gw)
    results.add_routes(app, gw)
    dashboard.register(app, gw)
    app.on_startup.append(gw.open)
    app.on_cleanup.append(gw.close)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve HTTP until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="lynx-gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--scheduler-addr", default="127.0.0.1:50051")
    parser.add_argument("--telemetry-addr", default="127.0.0.1:50053")
    guard.add_args(parser)
    parser.add_argument("--sampler-addr", default="", help="also wait for the sampler in /readyz")
    args = parser.parse_args(argv)
    configure_logging()
    context = guard.ssl_context(args)
    scheme = "https" if context else "http"
    hosts = guard.allowed_hosts(args.host, args.allowed_host)
    web.run_app(
        build_app(args.scheduler_addr, args.telemetry_addr, args.auth, hosts, args.sampler_addr),
        host=args.host,
        port=args.port,
        ssl_context=context,
        print=lambda *_: log.info("serving HTTP on %s://%s:%d", scheme, args.host, args.port),
    )


if __name__ == "__main__":
    main()

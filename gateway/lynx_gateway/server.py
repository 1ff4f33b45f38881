"""The HTTP gateway (aiohttp): REST routes over the scheduler's and telemetry's gRPC."""

from __future__ import annotations

import argparse
import json
import logging

import grpc
from aiohttp import web

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_common import names
from lynx_common.errors import ValidationError
from lynx_common.rest import INT_RANGE, F, to_json
from lynx_common.run_config import run_configs_csv
from lynx_common.server import client_channel, configure_logging
from lynx_common.status import validation_error
from lynx_gateway import artifacts, convert, dashboard, results
from lynx_gateway.openapi import SPEC

log = logging.getLogger(__name__)
DEADLINE_S = 30.0
SUBMIT_DEADLINE_S = 300.0
MAX_BODY_BYTES = 16 * 1024 * 1024
INT32, INT64 = INT_RANGE[F.TYPE_INT32], INT_RANGE[F.TYPE_INT64]  # the bounds of the proto fields they fill
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def error(status: int, message: str, field: str | None = None) -> web.Response:
    """The JSON error body: {"error": {"message", "field"}}; field is null when no one field is at fault."""
    return web.json_response({"error": {"message": message, "field": field or None}}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler):
    """gRPC and validation errors become JSON errors with the right HTTP status."""
    try:
        return await handler(request)
    except ValidationError as exc:
        return error(400, str(exc), exc.field)
    except grpc.aio.AioRpcError as exc:
        status = _HTTP_STATUS.get(exc.code(), 502)
        message = exc.details() or exc.code().name
        invalid = validation_error(exc) if exc.code() == grpc.StatusCode.INVALID_ARGUMENT else None
        return error(status, message, invalid.field if invalid else None)


class Gateway:
    """Route handlers; one channel per backend."""

    def __init__(self, scheduler_addr: str, telemetry_addr: str) -> None:
        self.scheduler_addr = scheduler_addr
        self.telemetry_addr = telemetry_addr

    async def open(self, _app: web.Application | None = None) -> None:
        """Create the channels inside the serving loop (grpc.aio binds them to it)."""
        self.scheduler_channel = client_channel(self.scheduler_addr)
        self.telemetry_channel = client_channel(self.telemetry_addr)
        self.scheduler = pb_grpc.SchedulerServiceStub(self.scheduler_channel)
        self.telemetry = tel_grpc.TelemetryServiceStub(self.telemetry_channel)

    async def close(self, _app: web.Application | None = None) -> None:
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
        reply = await self.scheduler.ListJobs(pb.ListJobsRequest(batch_id=request.match_info["id"]), timeout=DEADLINE_S)
        return web.json_response(to_json(reply))

    async def get_job(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.GetJob(pb.GetJobRequest(job_id=request.match_info["id"]), timeout=DEADLINE_S)
        return web.json_response(to_json(reply.job))

    async def job_results(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.GetJob(pb.GetJobRequest(job_id=request.match_info["id"]), timeout=DEADLINE_S)
        job = reply.job
        if job.status not in (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED):
            status = names.JOB_STATUS.name(job.status)
            return error(409, f"job {job.job_id} has no final result yet (status {status})")
        return web.json_response(to_json(job.result))

    async def job_telemetry(self, request: web.Request) -> web.Response:
        job_id = request.match_info["id"]
        query = tel_pb.QueryRequest(
            job_id=job_id, variables=request.query.getall("variable", []), limit=_int_query(request, "limit", 0, INT32)
        )
        for name in ("start_ns", "end_ns"):
            if name in request.query:
                setattr(query, name, _int_query(request, name, 0))
        reply = await self.telemetry.Query(query, timeout=DEADLINE_S)
        return web.json_response(convert.telemetry_json(job_id, reply))

    async def _export(self, request: web.Request, export: tel_pb.ExportRequest, stored_compression: str,
                      name: str) -> web.StreamResponse:
        """Stream the CSV; ?compression= when given, else the batch's telemetry.storage.compression."""
        export.compression = request.query.get("compression", stored_compression)
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
        await self.scheduler.GetBatch(pb.GetBatchRequest(batch_id=batch_id), timeout=DEADLINE_S)  # 404 early
        subscribe = tel_pb.SubscribeRequest(
            batch_id=batch_id, job_id=request.query.get("job_id", ""), variables=request.query.getall("variable", [])
        )
        call = self.telemetry.Subscribe(subscribe)
        response = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await response.prepare(request)
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
        finally:
            call.cancel()
        return response

    async def list_runners(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.ListRunners(pb.ListRunnersRequest(), timeout=DEADLINE_S)
        return web.json_response(to_json(reply))

    async def get_runner(self, request: web.Request) -> web.Response:
        reply = await self.scheduler.GetRunner(
            pb.GetRunnerRequest(runner_id=request.match_info["id"]), timeout=DEADLINE_S
        )
        return web.json_response(to_json(reply.runner))

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(SPEC)


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationError("body", "is not valid JSON") from None


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


def build_app(scheduler_addr: str, telemetry_addr: str) -> web.Application:
    """The aiohttp application with every route."""
    gw = Gateway(scheduler_addr, telemetry_addr)
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY_BYTES)
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
            web.get("/openapi.json", gw.openapi),
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
    args = parser.parse_args(argv)
    configure_logging()
    web.run_app(
        build_app(args.scheduler_addr, args.telemetry_addr),
        host=args.host,
        port=args.port,
        print=lambda *_: log.info("serving HTTP on http://%s:%d", args.host, args.port),
    )


if __name__ == "__main__":
    main()

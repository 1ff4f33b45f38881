"""The gateway's OpenAPI 3.1 document (GET /openapi.json), its bodies generated from the proto descriptors."""

from __future__ import annotations

from lynx.auth.v1 import auth_service_pb2 as auth_pb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx_gateway import results
from lynx_gateway.dashboard import openapi as dashboard_openapi
from lynx_gateway.schema import Schemas

_schemas = Schemas()
_ref = _schemas.ref
_ERROR = {"$ref": "#/components/responses/Error"}
_ID = {"in": "path", "required": True, "schema": {"type": "string"}}


def _op(op_id: str, summary: str, schema: dict, *errors: int, params: list | None = None,
        body: dict | None = None, links: dict | None = None) -> dict:
    op: dict = {
        "operationId": op_id,
        "summary": summary,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}},
    }
    if links:
        op["responses"]["200"]["links"] = links
    for code in (*errors, *((413,) if body else ()), 429, 500, 503):  # 413/429: docs/limits.md
        op["responses"][str(code)] = _ERROR
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _body(message, *skip: str) -> dict:
    """A request body: the message's fields less those taken from the URL."""
    return _schemas.build(message.DESCRIPTOR, skip=skip)


def _query(message, *names: str) -> list:
    """Query parameters from request fields (a repeated one as `?variable=a&variable=b`)."""
    params = []
    for name in names:
        fd = message.DESCRIPTOR.fields_by_name[name]
        param = {"name": "variable" if name == "variables" else name, "in": "query", "required": False,
                 "schema": _schemas.value(fd)}
        if fd.is_repeated:
            param["schema"] = {"type": "array", "items": param["schema"]}
            param["explode"] = True
        params.append(param)
    return params


def _id(name: str = "id") -> list:
    return [{"name": name, **_ID}]


def _link(op_id: str, expression: str) -> dict:
    return {"operationId": op_id, "parameters": {"id": expression}}


_BATCH = _ref(pb.Batch.DESCRIPTOR)
_BATCH_LINKS = {name: _link(op, "$response.body#/batch/batch_id") for name, op in (
    ("GetBatch", "getBatch"), ("ListJobs", "listJobs"), ("BatchResults", "batchResults"))}
_SUBMIT_LINKS = {
    **{name: _link(op, "$response.body#/batch_id") for name, op in (
        ("GetBatch", "getBatch"), ("ListJobs", "listJobs"), ("BatchResults", "batchResults"),
        ("CancelBatch", "cancelBatch"), ("RerunFailed", "rerunFailed"),
        ("ExportBatchTelemetry", "exportBatchTelemetry"))},
    "ExtendBatch": {"operationId": "extendBatch", "parameters": {"id": "$response.body#/batch_id"},
                    "requestBody": {"runs": 1}},
}
_JOB_LINKS = {name: _link(op, "$response.body#/jobs/0/job_id") for name, op in (
    ("GetJob", "getJob"), ("JobResults", "jobResults"), ("JobTelemetry", "jobTelemetry"))}
_EXPORT_PARAMS = [*_query(tel_pb.ExportRequest, "variables", "start_ns", "end_ns"),
                  {"name": "compression", "in": "query", "required": False, "schema": {"enum": ["", "gzip"]},
                   "description": "default: gzip when the batch's telemetry.storage.compression is gzip"}]
_TELEMETRY = _schemas.build(tel_pb.QueryResponse.DESCRIPTOR)
_TELEMETRY = {**_TELEMETRY,  # the gateway follows the pages: no next_page_token in the REST answer
              "properties": {"job_id": {"type": "string"},
                             **{k: v for k, v in _TELEMETRY["properties"].items() if k != "next_page_token"}},
              "required": ["job_id", *(k for k in _TELEMETRY["required"] if k != "next_page_token")]}
_PREVIEW = _schemas.build(pb.PreviewResponse.DESCRIPTOR)


def _export_op(op_id: str, summary: str) -> dict:
    op = _op(op_id, summary, {"type": "string"}, 400, 404, params=[*_id(), *_EXPORT_PARAMS])
    op["responses"]["200"] = {"description": "CSV job_id,timestamp_ns,variable,value (gzip when asked)",
                              "content": {"text/csv": {"schema": {"type": "string"}},
                                          "application/gzip": {"schema": {"type": "string",
                                                                          "contentEncoding": "binary"}}}}
    return op


def _stream_op() -> dict:
    op = _op("streamBatchTelemetry", "Live telemetry of a batch, one JSON sample per line", {"type": "string"},
             404, params=[*_id(), *_query(tel_pb.SubscribeRequest, "job_id", "variables")])
    op["responses"]["200"] = {"description": "newline-delimited JSON {job_id, timestamp_ns, values}",
                              "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
    return op


def _artifact_op() -> dict:
    params = [*_id(), {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                       "description": "the file's path in the job's outputs, as in its result's artifacts"},
              {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"},
               "description": "one byte range: bytes=a-b, bytes=a- or bytes=-n"}]
    op = _op("downloadArtifact", "A job's uploaded output file (byte ranges allowed)", {"type": "string"},
             400, 404, 416, params=params)
    binary = {"*/*": {"schema": {"type": "string", "contentEncoding": "binary"}}}
    headers = {"ETag": {"schema": {"type": "string"}, "description": "the quoted sha256 of the file"},
               "Accept-Ranges": {"schema": {"const": "bytes"}}}
    op["responses"]["200"] = {"description": "the file, with its content type", "content": binary, "headers": headers}
    op["responses"]["206"] = {"description": "the requested range (Content-Range)", "content": binary,
                              "headers": headers}
    op["responses"]["304"] = {"description": "If-None-Match matched the ETag"}
    return op


def _list(key: str, item: dict) -> dict:
    return {"type": "object", "properties": {key: {"type": "array", "items": item}}, "required": [key],
            "additionalProperties": False}


_JOB_PAGE = _list("jobs", _ref(pb.Job.DESCRIPTOR))
_JOB_PAGE["properties"]["next_page_token"] = {
    "type": ["string", "null"], "description": "pass as ?page_token= for the next page; null on the last page"}
_PAGE_PARAMS = [
    {"name": "limit", "in": "query", "required": False, "description": "jobs per page (default 1000, "
     "LYNX_LIMIT_PAGE_SIZE; at most LYNX_LIMIT_MAX_PAGE_SIZE)", "schema": {"type": "integer", "minimum": 1}},
    {"name": "page_token", "in": "query", "required": False, "schema": {"type": "string"}},
]

PATHS = {
    "/jobs": {"post": _op("submitBatch", "Submit a batch", _schemas.build(pb.SubmitBatchResponse.DESCRIPTOR),
                          400, body=_body(pb.SubmitBatchRequest), links=_SUBMIT_LINKS)},
    "/preview": {"post": _op("preview", "Sample a config without running it (?format=csv for CSV)", _PREVIEW, 400,
                             body=_body(pb.PreviewRequest),
                             params=[{"name": "format", "in": "query", "required": False,
                                      "schema": {"enum": ["json", "csv"]}}])},
    "/batches": {"get": _op("listBatches", "List batches, newest first (without their configs)",
                            _list("batches", _BATCH), 400, params=_query(pb.ListBatchesRequest, "limit"))},
    "/batches/{id}": {"get": _op("getBatch", "A batch with its progress", _BATCH, 404, params=_id(),
                                 links={"ListJobs": _link("listJobs", "$response.body#/batch/batch_id")})},
    "/batches/{id}/cancel": {"post": _op("cancelBatch", "Cancel a batch",
                                         _schemas.build(pb.CancelBatchResponse.DESCRIPTOR), 404, params=_id(),
                                         links=_BATCH_LINKS)},
    "/batches/{id}/extend": {"post": _op("extendBatch", "Add runs to a batch, continuing its sample",
                                         _schemas.build(pb.ExtendBatchResponse.DESCRIPTOR), 400, 404, 409,
                                         params=_id(), body=_body(pb.ExtendBatchRequest, "batch_id"),
                                         links=_BATCH_LINKS)},
    "/batches/{id}/rerun-failed": {"post": _op("rerunFailed", "Run a batch's failed jobs again (same parameters "
                                               "and seeds)", _schemas.build(pb.RerunFailedResponse.DESCRIPTOR),
                                               404, 409, params=_id(), links=_BATCH_LINKS)},
    "/batches/{id}/telemetry/export": {"get": _export_op("exportBatchTelemetry", "Stored telemetry of a batch as CSV")},
    "/batches/{id}/telemetry/stream": {"get": _stream_op()},
    "/jobs/{id}/telemetry/export": {"get": _export_op("exportJobTelemetry", "Stored telemetry of a job as CSV")},
    "/batches/{id}/jobs": {"get": _op("listJobs", "The jobs of a batch, in run order, one page at a time",
                                      _JOB_PAGE, 400, 404, params=[*_id(), *_PAGE_PARAMS], links=_JOB_LINKS)},
    "/batches/{id}/results": {"get": _op("batchResults", "Results of the finished jobs",
                                         {"type": "array", "items": _ref(pb.JobResult.DESCRIPTOR)}, 404,
                                         params=_id())},
    "/jobs/{id}": {"get": _op("getJob", "A job", _ref(pb.Job.DESCRIPTOR), 404, params=_id(),
                              links={"GetBatch": _link("getBatch", "$response.body#/batch_id")})},
    "/jobs/{id}/results": {"get": _op("jobResults", "A job's final result", _ref(pb.JobResult.DESCRIPTOR),
                                      404, 409, params=_id())},
    "/jobs/{id}/artifacts/{name}": {"get": _artifact_op()},
    "/jobs/{id}/telemetry": {"get": _op("jobTelemetry", "Stored telemetry of a job", _TELEMETRY, 400,
                                        params=[*_id(), *_query(tel_pb.QueryRequest, "variables", "start_ns",
                                                                "end_ns", "limit")])},
    "/tokens": {
        "get": _op("listTokens", "API tokens, without their secrets (admin)",
                   _schemas.build(auth_pb.ListTokensResponse.DESCRIPTOR), 401, 403, 404),
        "post": _op("createToken", "Mint a token (admin); its secret is in this answer only",
                    _schemas.build(auth_pb.CreateTokenResponse.DESCRIPTOR), 400, 401, 403, 404,
                    body=_body(auth_pb.CreateTokenRequest)),
    },
    "/tokens/{id}/revoke": {"post": _op("revokeToken", "Revoke a token (admin)",
                                        _schemas.build(auth_pb.RevokeTokenResponse.DESCRIPTOR), 401, 403, 404,
                                        params=_id())},
    "/runners": {"get": _op("listRunners", "All runners", _list("runners", _ref(pb.Runner.DESCRIPTOR)))},
    "/runners/{id}": {"get": _op("getRunner", "One runner", _ref(pb.Runner.DESCRIPTOR), 404, params=_id())},
    "/healthz": {"get": _op("health", "Liveness of the gateway",
                            {"type": "object", "properties": {"status": {"const": "ok"}}, "required": ["status"]})},
    "/readyz": {"get": _op("ready", "Readiness: 200 once every backend reports SERVING over grpc.health.v1",
                           {"type": "object", "properties": {"status": {"const": "ready"}}, "required": ["status"]})},
    "/openapi.json": {"get": _op("openapi", "This document", {"type": "object"})},
}

PATHS.update(results.openapi_paths(_op, _id()))
PATHS.update(dashboard_openapi.openapi_paths(_op, _id()))

ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message"], "properties": {
        "message": {"type": "string"},
        "field": {"type": ["string", "null"], "description": "dotted path of the offending field, when known"}}}},
}

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Lynx", "version": "0.1.0",
             "description": "Monte Carlo simulation studies: submit batches, follow them, read results."},
    "paths": PATHS,
    "components": {
        "schemas": {**_schemas.components, "Error": ERROR},
        "responses": {"Error": {"description": "Error",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
    },
}

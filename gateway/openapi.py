"""The gateway's OpenAPI 3.1 document (served at GET /openapi.json)."""

from __future__ import annotations

_ERROR = {"$ref": "#/components/responses/Error"}
_ID = {"in": "path", "required": True, "schema": {"type": "string"}}


def _op(summary: str, schema: dict, *errors: int, params: list | None = None, body: dict | None = None) -> dict:
    op: dict = {
        "summary": summary,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}},
    }
    for code in errors:
        op["responses"][str(code)] = _ERROR
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _with_id(name: str) -> list:
    return [{"name": name, **_ID}]


STATUS_COUNTS = {
    "type": "object",
    "properties": {s: {"type": "integer"} for s in ("Pending", "Running", "Completed", "Failed", "Cancelled")},
}

SCHEMAS = {
    "Submission": {
        "type": "object",
        "required": ["config"],
        "properties": {
            "name": {"type": "string"},
            "runs_override": {"type": ["integer", "null"], "minimum": 1},
            "config": {"type": "object", "description": "Batch config (see README: simulation, monte_carlo, "
                       "dispersions, compute, early_termination, telemetry)"},
        },
    },
    "Submitted": {
        "type": "object",
        "properties": {
            "batch_id": {"type": "string"},
            "total_jobs": {"type": "integer"},
            "estimated_completion_time_mins": {"type": ["number", "null"]},
        },
    },
    "BatchStatus": {
        "type": "object",
        "properties": {
            "batch": {"type": "object", "properties": {
                "batch_id": {"type": "string"}, "name": {"type": "string"},
                "status": {"enum": ["Pending", "Running", "Completed", "Failed", "Cancelled"]},
                "total_jobs": {"type": "integer"}, "seed": {"type": "integer"},
                "created_at": {"type": ["string", "null"]}, "started_at": {"type": ["string", "null"]},
                "finished_at": {"type": ["string", "null"]}, "config": {"type": "object"}}},
            "jobs_by_status": STATUS_COUNTS,
            "throughput_jobs_per_minute": {"type": "number"},
            "estimated_completion_time_mins": {"type": ["number", "null"]},
        },
    },
    "JobResult": {
        "type": "object",
        "properties": {
            "job_id": {"type": "string"}, "success": {"type": "boolean"},
            "execution_time_secs": {"type": "number"},
            "output_files": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "error_message": {"type": ["string", "null"]}, "exit_code": {"type": "integer"},
            "termination_reason": {"type": "string"}, "attempt": {"type": "integer"},
        },
    },
    "Job": {
        "type": "object",
        "properties": {
            "job_id": {"type": "string"}, "batch_id": {"type": "string"}, "run_id": {"type": "integer"},
            "status": {"type": "string"}, "parameters": {"type": "object"}, "attempts": {"type": "integer"},
            "runner_id": {"type": ["string", "null"]},
            "result": {"oneOf": [_ref("JobResult"), {"type": "null"}]},
        },
    },
    "Runner": {
        "type": "object",
        "properties": {
            "runner_id": {"type": "string"}, "name": {"type": "string"}, "status": {"enum": ["Online", "Offline"]},
            "engines": {"type": "array", "items": {"type": "string"}},
            "capabilities": {"type": "object", "properties": {
                "max_concurrent_jobs": {"type": "integer"},
                "supported_simulation_types": {"type": "array", "items": {"type": "string"}},
                "gpu_available": {"type": "boolean"}, "memory_gb": {"type": "number"},
                "cpu_cores": {"type": "integer"}}},
            "last_heartbeat": {"type": ["string", "null"]}, "running_jobs": {"type": "integer"},
        },
    },
    "Telemetry": {
        "type": "object",
        "properties": {
            "job_id": {"type": "string"},
            "series": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "timestamps_ns": {"type": "array", "items": {"type": "integer"}},
                "values": {"type": "array", "items": {"type": "number"}}}}},
        },
    },
    "Error": {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {
            "message": {"type": "string"}, "field": {"type": "string"}}}},
    },
}

_INT_QUERY = {"in": "query", "required": False, "schema": {"type": "integer"}}

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Lynx", "version": "0.1.0",
             "description": "Monte Carlo simulation studies: submit batches, follow them, read results."},
    "paths": {
        "/jobs": {"post": _op("Submit a batch", _ref("Submitted"), 400, 503, body=_ref("Submission"))},
        "/batches": {"get": _op("List batches, newest first",
                                {"type": "object", "properties": {"batches": {"type": "array",
                                                                              "items": _ref("BatchStatus")}}},
                                400, params=[{"name": "limit", **_INT_QUERY}])},
        "/batches/{id}": {"get": _op("A batch with its progress", _ref("BatchStatus"), 404, params=_with_id("id"))},
        "/batches/{id}/cancel": {"post": _op("Cancel a batch", _ref("BatchStatus"), 404, params=_with_id("id"))},
        "/batches/{id}/jobs": {"get": _op("The jobs of a batch, in run order",
                                          {"type": "object", "properties": {"jobs": {"type": "array",
                                                                                     "items": _ref("Job")}}},
                                          404, params=_with_id("id"))},
        "/batches/{id}/results": {"get": _op("Results of the finished jobs",
                                             {"type": "array", "items": _ref("JobResult")}, 404,
                                             params=_with_id("id"))},
        "/jobs/{id}": {"get": _op("A job", _ref("Job"), 404, params=_with_id("id"))},
        "/jobs/{id}/results": {"get": _op("A job's final result", _ref("JobResult"), 404, 409,
                                          params=_with_id("id"))},
        "/jobs/{id}/telemetry": {"get": _op(
            "Stored telemetry of a job", _ref("Telemetry"), 400,
            params=[*_with_id("id"),
                    {"name": "variable", "in": "query", "required": False,
                     "schema": {"type": "array", "items": {"type": "string"}}, "explode": True},
                    {"name": "start_ns", **_INT_QUERY}, {"name": "end_ns", **_INT_QUERY},
                    {"name": "limit", **_INT_QUERY}])},
        "/runners": {"get": _op("All runners",
                                {"type": "object", "properties": {"runners": {"type": "array",
                                                                              "items": _ref("Runner")}}})},
        "/runners/{id}": {"get": _op("One runner", _ref("Runner"), 404, params=_with_id("id"))},
        "/healthz": {"get": _op("Liveness of the gateway", {"type": "object"})},
        "/openapi.json": {"get": _op("This document", {"type": "object"})},
    },
    "components": {
        "schemas": SCHEMAS,
        "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": _ref("Error")}}}},
    },
}

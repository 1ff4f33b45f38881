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
            "seed": {"type": "integer"},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
    "PreviewRequest": {
        "type": "object",
        "required": ["config"],
        "properties": {
            "runs_override": {"type": ["integer", "null"], "minimum": 1},
            "limit": {"type": ["integer", "null"], "minimum": 1},
            "config": {"type": "object"},
        },
    },
    "Preview": {
        "type": "object",
        "properties": {
            "seed": {"type": "integer"}, "total_runs": {"type": "integer"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "run_configs": {"type": "array", "items": {"type": "object", "properties": {
                "run_id": {"type": "integer"}, "parameters": {"type": "object"}, "metadata": {"type": "object"}}}},
        },
    },
    "Extension": {"type": "object", "required": ["runs"], "properties": {"runs": {"type": "integer", "minimum": 1}}},
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
            "early_terminated_jobs": {"type": "integer"},
            "failures_by_reason": {"type": "object", "additionalProperties": {"type": "integer"}},
            "status_message": {"type": ["string", "null"]},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Attempt": {
        "type": "object",
        "properties": {
            "attempt": {"type": "integer"}, "runner_id": {"type": ["string", "null"]},
            "started_at": {"type": ["string", "null"]}, "ended_at": {"type": ["string", "null"]},
            "outcome": {"type": "string"}, "exit_code": {"type": "integer"},
            "termination_reason": {"type": ["string", "null"]}, "error_message": {"type": ["string", "null"]},
            "ignored_reports": {"type": "integer"},
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
            "files": {"type": "array", "items": {"type": "object", "properties": {
                "path": {"type": "string"}, "relative_path": {"type": "string"},
                "size_bytes": {"type": "integer"}, "sha256": {"type": "string"}}}},
            "telemetry_samples_sent": {"type": "integer"}, "telemetry_samples_dropped": {"type": "integer"},
            "termination": {"type": ["object", "null"], "properties": {
                "variable": {"type": "string"}, "condition": {"type": "string"},
                "value": {"type": ["number", "null"]}}},
        },
    },
    "Job": {
        "type": "object",
        "properties": {
            "job_id": {"type": "string"}, "batch_id": {"type": "string"}, "run_id": {"type": "integer"},
            "status": {"type": "string"}, "parameters": {"type": "object"}, "attempt_count": {"type": "integer"},
            "attempts": {"type": "array", "items": _ref("Attempt")}, "runner_losses": {"type": "integer"},
            "not_before": {"type": ["string", "null"]},
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
_VARIABLES = {"name": "variable", "in": "query", "required": False,
              "schema": {"type": "array", "items": {"type": "string"}}, "explode": True}
_EXPORT_PARAMS = [_VARIABLES, {"name": "start_ns", **_INT_QUERY}, {"name": "end_ns", **_INT_QUERY},
                  {"name": "compression", "in": "query", "required": False, "schema": {"enum": ["", "gzip"]}}]


def _export_op(summary: str, *errors: int) -> dict:
    op = _op(summary, {"type": "string"}, *errors, params=[*_with_id("id"), *_EXPORT_PARAMS])
    op["responses"]["200"] = {"description": "CSV job_id,timestamp_ns,variable,value (gzip when asked)",
                              "content": {"text/csv": {"schema": {"type": "string"}},
                                          "application/gzip": {"schema": {"type": "string",
                                                                          "contentEncoding": "binary"}}}}
    return op


def _stream_op() -> dict:
    op = _op("Live telemetry of a batch, one JSON sample per line", {"type": "string"}, 404,
             params=[*_with_id("id"), {"name": "job_id", "in": "query", "required": False,
                                       "schema": {"type": "string"}}, _VARIABLES])
    op["responses"]["200"] = {"description": "newline-delimited JSON {job_id, timestamp_ns, values}",
                              "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
    return op


SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Lynx", "version": "0.1.0",
             "description": "Monte Carlo simulation studies: submit batches, follow them, read results."},
    "paths": {
        "/jobs": {"post": _op("Submit a batch", _ref("Submitted"), 400, 503, body=_ref("Submission"))},
        "/preview": {"post": _op("Sample a config without running it (?format=csv for CSV)", _ref("Preview"),
                                 400, 503, body=_ref("PreviewRequest"),
                                 params=[{"name": "format", "in": "query", "required": False,
                                          "schema": {"enum": ["json", "csv"]}}])},
        "/batches": {"get": _op("List batches, newest first",
                                {"type": "object", "properties": {"batches": {"type": "array",
                                                                              "items": _ref("BatchStatus")}}},
                                400, params=[{"name": "limit", **_INT_QUERY}])},
        "/batches/{id}": {"get": _op("A batch with its progress", _ref("BatchStatus"), 404, params=_with_id("id"))},
        "/batches/{id}/cancel": {"post": _op("Cancel a batch", _ref("BatchStatus"), 404, params=_with_id("id"))},
        "/batches/{id}/extend": {"post": _op("Add runs to a batch, continuing its sample", _ref("BatchStatus"),
                                             400, 404, 409, params=_with_id("id"), body=_ref("Extension"))},
        "/batches/{id}/rerun-failed": {"post": _op("Run a batch's failed jobs again (same parameters and seeds)",
                                                   _ref("BatchStatus"), 404, 409, params=_with_id("id"))},
        "/batches/{id}/telemetry/export": {"get": _export_op("Stored telemetry of a batch as CSV", 400, 404)},
        "/batches/{id}/telemetry/stream": {"get": _stream_op()},
        "/jobs/{id}/telemetry/export": {"get": _export_op("Stored telemetry of a job as CSV", 400, 404)},
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

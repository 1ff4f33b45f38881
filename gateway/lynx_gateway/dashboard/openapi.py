"""The dashboard's routes in the gateway's OpenAPI document: the events stream, the pages and their JSON."""

from __future__ import annotations

from lynx_common import names
from lynx_gateway.dashboard.runs import PAGE_SIZES


def _q(name: str, schema: dict, description: str = "") -> dict:
    param = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    if schema.get("type") == "array":
        param["explode"] = True
    return param


def openapi_paths(op, ids: list) -> dict:
    """`op` is openapi._op (a JSON answer with error codes), `ids` the {id} path parameter."""

    def page(op_id: str, summary: str, *errors: int, params: list | None = None) -> dict:
        o = op(op_id, summary, {"type": "string"}, *errors, params=params)
        o["responses"]["200"] = {"description": "an HTML page",
                                 "content": {"text/html": {"schema": {"type": "string"}}}}
        return o

    def as_json(op_id: str, summary: str, *errors: int, params: list | None = None) -> dict:
        return op(op_id, summary, {"type": "object"}, *errors, params=params)

    events = op("batchEvents", "A batch's progress as Server-Sent Events (status, counts, job_finished, end)",
                {"type": "string"}, 404, params=ids)
    events["responses"]["200"] = {"description": "text/event-stream until the batch is finished",
                                  "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    static = op("dashboardStatic", "The dashboard's scripts, styles and vendored libraries", {"type": "string"}, 404,
                params=[{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}])
    static["responses"]["200"] = {"description": "a file", "content": {"*/*": {"schema": {"type": "string"}}}}
    runs_params = [
        *ids,
        _q("sort", {"type": "string"}, "run_id, status, reason, attempts, seconds, runner, seed, in.<input>, "
           "out.<output>"),
        _q("order", {"enum": ["asc", "desc"]}),
        _q("page", {"type": "integer", "minimum": 1}),
        _q("size", {"enum": list(PAGE_SIZES)}),
        _q("status", {"type": "array", "items": {"enum": list(names.JOB_STATUS.names)}}),
        _q("reason", {"type": "array", "items": {"enum": list(names.TERMINATION_REASON.names)}}),
    ]
    return {
        "/": {"get": page("dashboard", "The dashboard: batches, newest first", 400,
                          params=[_q("page", {"type": "integer", "minimum": 1})])},
        "/batches/{id}/events": {"get": events},
        "/ui/batches/{id}": {"get": page("dashboardBatch", "A batch, live", 404, params=ids)},
        "/ui/batches/{id}/runs": {"get": page(
            "dashboardRuns", "A page of the batch's runs table, sorted and filtered on the server (also "
            "min.<column>=x and max.<column>=y ranges)", 400, 404, params=runs_params)},
        "/ui/batches/{id}/charts.json": {"get": as_json(
            "dashboardCharts", "Convergence and histogram of one output", 400, 404,
            params=[*ids, _q("output", {"type": "string"})])},
        "/ui/batches/{id}/overlay": {"get": page("dashboardOverlay", "One telemetry variable across runs", 404,
                                                 params=ids)},
        "/ui/batches/{id}/overlay.json": {"get": as_json(
            "dashboardOverlayData", "One telemetry variable of many runs, downsampled", 400, 404,
            params=[*ids, _q("variable", {"type": "string"}), _q("runs", {"type": "integer"})])},
        "/ui/jobs/{id}": {"get": page("dashboardJob", "A run", 404, params=ids)},
        "/ui/runners": {"get": page("dashboardRunners", "Runners")},
        "/ui/static/{path}": {"get": static},
    }

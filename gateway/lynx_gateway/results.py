"""The study's answer over HTTP: GET /batches/{id}/summary, runs.csv, runs.parquet and report.html, computed
by lynx_results from the scheduler's StreamRuns, with the heavy work off the event loop."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_results import report, summary, table
from lynx_results.records import Records, RecordsBuilder, inputs_of

log = logging.getLogger(__name__)
PAGE = 5000
STREAM_DEADLINE_S = 600.0
STREAM_RUNS = "/lynx.scheduler.v1.SchedulerService/StreamRuns"


class Results:
    """Route handlers over a Gateway's scheduler stub."""

    def __init__(self, gw) -> None:
        self.gw = gw

    async def _pages(self, batch_id: str) -> AsyncIterator[bytes]:
        """The batch's StreamRuns pages as their wire bytes, columnar: lynx_results reads them into numpy
        (lynx_results.columnar) instead of a Python object per value."""
        stream_runs = self.gw.scheduler_channel.unary_stream(
            STREAM_RUNS, request_serializer=pb.StreamRunsRequest.SerializeToString, response_deserializer=None
        )
        async for page in stream_runs(
            pb.StreamRunsRequest(batch_id=batch_id, page_size=PAGE, columnar=True), timeout=STREAM_DEADLINE_S
        ):
            yield page

    async def _records(self, batch: pb.Batch) -> Records:
        builder = RecordsBuilder(inputs_of(batch.config))
        async for page in self._pages(batch.batch_id):
            await asyncio.to_thread(builder.add_page, page)
        return await asyncio.to_thread(builder.build)

    async def _spool(self, batch: pb.Batch) -> table.PageSpool:
        """One pass over StreamRuns: the pages spooled (memory, then disk) with the table's columns."""
        spool = table.PageSpool()
        async for page in self._pages(batch.batch_id):
            await asyncio.to_thread(spool.write, page)
        return spool

    async def summary(self, request: web.Request) -> web.Response:
        batch = await self.gw._batch(request.match_info["id"])  # 404 for an unknown batch
        rec = await self._records(batch)
        document = await asyncio.to_thread(summary.summarize, rec, batch.seed)
        return web.json_response(document, dumps=lambda d: json.dumps(d, allow_nan=False))

    async def report(self, request: web.Request) -> web.Response:
        batch = await self.gw._batch(request.match_info["id"])
        rec = await self._records(batch)
        html = await asyncio.to_thread(report.render, batch, rec)
        return web.Response(text=html, content_type="text/html")

    async def runs_csv(self, request: web.Request) -> web.StreamResponse:
        batch = await self.gw._batch(request.match_info["id"])
        pages = await self._spool(batch)
        encoder = table.CsvEncoder(pages.layout(batch.config))
        response = _download(f"runs-{batch.batch_id}.csv", "text/csv")
        await response.prepare(request)
        await response.write(encoder.header())
        read = pages.read()
        while (page := await asyncio.to_thread(next, read, None)) is not None:
            await response.write(await asyncio.to_thread(encoder.encode, page))
        await response.write_eof()
        return response

    async def runs_parquet(self, request: web.Request) -> web.StreamResponse:
        batch = await self.gw._batch(request.match_info["id"])
        pages = await self._spool(batch)
        spool = table.ParquetSpool(pages.layout(batch.config))
        read = pages.read()
        while (page := await asyncio.to_thread(next, read, None)) is not None:
            await asyncio.to_thread(spool.write, page)
        f = await asyncio.to_thread(spool.finish)
        try:
            response = _download(f"runs-{batch.batch_id}.parquet", "application/vnd.apache.parquet")
            await response.prepare(request)
            while block := await asyncio.to_thread(f.read, table.BLOCK):
                await response.write(block)
            await response.write_eof()
        finally:
            f.close()
        return response


def _download(filename: str, content_type: str) -> web.StreamResponse:
    return web.StreamResponse(
        headers={"content-type": content_type, "content-disposition": f'attachment; filename="{filename}"'}
    )


def add_routes(app: web.Application, gw) -> None:
    """Register the results routes on the gateway's application."""
    results = Results(gw)
    app.add_routes(
        [
            web.get("/batches/{id}/summary", results.summary),
            web.get("/batches/{id}/runs.csv", results.runs_csv),
            web.get("/batches/{id}/runs.parquet", results.runs_parquet),
            web.get("/batches/{id}/report.html", results.report),
        ]
    )


def _obj(properties: dict, required: list | None = None, extra: dict | bool = False) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": extra,
    }


_NUM = {"type": ["number", "null"]}
_INT = {"type": "integer"}
_PAIR = {"type": ["array", "null"], "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
_PROPORTION = {"estimate": _NUM, "wilson_95": _PAIR, "clopper_pearson_95": _PAIR}
_FIRST_ORDER = {"oneOf": [{"type": "null"}, _obj({"estimate": {"type": "number"}, "ci_95": _PAIR})]}
_NUMERIC_INPUT = _obj({"spearman": _NUM, "prcc": _NUM, "first_order": _FIRST_ORDER})
_LEVEL = _obj({"n": _INT, "mean": _NUM, "failure_rate": _NUM, "wilson_95": _PAIR}, required=["n"])
_CATEGORICAL_INPUT = _obj({"by_level": {"type": "object", "additionalProperties": _LEVEL}})
_BY_INPUT = {"type": "object", "additionalProperties": {"oneOf": [_NUMERIC_INPUT, _CATEGORICAL_INPUT]}}
_WILKS = _obj(
    {
        "upper": {"type": "number"},
        "upper_order_statistic": _INT,
        "lower": {"type": "number"},
        "lower_order_statistic": _INT,
        "note": {"type": "string"},
    }
)
_OUTPUT = _obj(
    {
        "n": _INT,
        "non_finite": _INT,
        "mean": _NUM,
        "mean_ci_95": _PAIR,
        "std": _NUM,
        "min": _NUM,
        "max": _NUM,
        "percentiles": {"type": ["object", "null"], "additionalProperties": {"type": "number"}},
        "wilks_95_95": _WILKS,
    },
    required=["n", "non_finite", "mean", "mean_ci_95", "std", "min", "max", "percentiles"],
)
_SERIES = {"type": "array", "items": _NUM}
SUMMARY_SCHEMA = _obj(
    {
        "runs": _obj(
            {
                "total": _INT,
                "finished": _INT,
                "succeeded": _INT,
                "failed": _INT,
                "early_terminated": _INT,
                "failures_by_reason": {"type": "object", "additionalProperties": _INT},
            }
        ),
        "failure_probability": _obj(
            {
                **_PROPORTION,
                "by_condition": {"type": "object", "additionalProperties": _obj({"failed": _INT, **_PROPORTION})},
            }
        ),
        "outputs": {"type": "object", "additionalProperties": _OUTPUT},
        "sensitivity": _obj({"outputs": {"type": "object", "additionalProperties": _BY_INPUT}, "failure": _BY_INPUT}),
        "convergence": _obj(
            {
                "runs": {"type": "array", "items": _INT},
                "failure_probability": _obj({"estimate": _SERIES, "wilson_95": {"type": "array", "items": _PAIR}}),
                "outputs": {
                    "type": "object",
                    "additionalProperties": _obj({"n": {"type": "array", "items": _INT}, "mean": _SERIES}),
                },
            }
        ),
    }
)


def openapi_paths(op, ids: list) -> dict:
    """The results routes for the OpenAPI document; `op` is openapi._op, `ids` the path parameters."""

    def download(op_id: str, summary_text: str, content_type: str, description: str) -> dict:
        o = op(op_id, summary_text, {"type": "string"}, 404, params=ids)
        o["responses"]["200"] = {
            "description": description,
            "content": {content_type: {"schema": {"type": "string", "contentEncoding": "binary"}}},
        }
        return o

    return {
        "/batches/{id}/summary": {
            "get": op(
                "batchSummary",
                "The study's answer: run counts, failure probability "
                "with intervals, output statistics, sensitivity, convergence",
                SUMMARY_SCHEMA,
                404,
                params=ids,
            )
        },
        "/batches/{id}/runs.csv": {
            "get": download(
                "batchRunsCsv",
                "One row per run (inputs, outputs, ending)",
                "text/csv",
                "CSV with a header row, streamed",
            )
        },
        "/batches/{id}/runs.parquet": {
            "get": download(
                "batchRunsParquet",
                "One row per run, as Parquet",
                "application/vnd.apache.parquet",
                "Parquet, one row group per page of runs",
            )
        },
        "/batches/{id}/report.html": {
            "get": download(
                "batchReport",
                "The study's self-contained HTML report",
                "text/html",
                "one HTML file (inline CSS and images)",
            )
        },
    }

"""The dashboard's HTML pages and the small JSON documents its charts draw (server-rendered, Jinja2)."""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path

import jinja2
import numpy as np
from aiohttp import web

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx_common import names
from lynx_common.errors import ValidationError
from lynx_common.rest import to_json
from lynx_gateway.dashboard.data import DEADLINE_S, RunsCache, progress
from lynx_gateway.dashboard.runs import PAGE_SIZES, parse_query

HERE = Path(__file__).parent
BATCHES_PER_PAGE = 25
OVERLAY_RUNS = 40
OVERLAY_POINTS = 300
_CONDITION = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([-+0-9.eE]+)\s*$")
STATUSES = names.JOB_STATUS.names
REASONS = names.TERMINATION_REASON.names
ICONS = {"Pending": "◷", "Running": "▶", "Completed": "✓", "Failed": "✗", "Cancelled": "⊘",
         "Online": "●", "Offline": "○"}


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(ICONS=ICONS, STATUSES=STATUSES, REASONS=REASONS, PAGE_SIZES=PAGE_SIZES)
    env.filters["num"] = _num
    return env


def _num(x: object) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def threshold(condition: str) -> tuple[str, float] | None:
    """("<", 6371.0) from "< 6371"; None when the text is not an operator and a number."""
    m = _CONDITION.match(condition)
    if not m:
        return None
    try:
        return m.group(1), float(m.group(2))
    except ValueError:
        return None


def downsample(ts: list[int], vs: list[float], points: int) -> tuple[list[float], list[float]]:
    """Every k-th sample (first and last kept) so a series has at most about `points` points; seconds from start."""
    if not ts:
        return [], []
    step = max(1, math.ceil(len(ts) / points))
    idx = list(range(0, len(ts), step))
    if idx[-1] != len(ts) - 1:
        idx.append(len(ts) - 1)
    t0 = ts[0]
    return [(ts[i] - t0) / 1e9 for i in idx], [vs[i] for i in idx]


class Pages:
    """Route handlers; `gw` is the gateway (its scheduler and telemetry stubs)."""

    def __init__(self, gw, runs: RunsCache | None = None) -> None:
        self.gw = gw
        self.env = environment()
        self._runs = runs

    @property
    def runs(self) -> RunsCache:
        if self._runs is None:
            self._runs = RunsCache(lambda: self.gw.scheduler_channel)
        return self._runs

    def render(self, template: str, /, **context) -> web.Response:
        return web.Response(text=self.env.get_template(template).render(**context), content_type="text/html")

    async def _batch(self, batch_id: str) -> pb.Batch:
        return (await self.gw.scheduler.GetBatch(pb.GetBatchRequest(batch_id=batch_id), timeout=DEADLINE_S)).batch

    async def index(self, request: web.Request) -> web.Response:
        page = _page(request)
        reply = await self.gw.scheduler.ListBatches(
            pb.ListBatchesRequest(limit=page * BATCHES_PER_PAGE + 1), timeout=DEADLINE_S)
        batches = [progress(b) for b in reply.batches]
        shown = batches[(page - 1) * BATCHES_PER_PAGE: page * BATCHES_PER_PAGE]
        return self.render("batches.html", title="Batches", batches=shown, page=page,
                           more=len(batches) > page * BATCHES_PER_PAGE)

    async def batch(self, request: web.Request) -> web.Response:
        batch = await self._batch(request.match_info["id"])
        config = to_json(batch.config)
        conditions = [dict(c, parsed=threshold(c.get("condition", "")))
                      for c in config.get("early_termination", {}).get("conditions", [])]
        return self.render("batch.html", title=f"Batch {batch.name or batch.batch_id}", p=progress(batch),
                           seed=batch.seed, inputs=list(config.get("dispersions", {})), conditions=conditions,
                           outputs=list(config.get("results", {}).get("outputs", [])),
                           variables=list(config.get("telemetry", {}).get("variables", [])), config=config)

    async def _table(self, batch_id: str):
        batch = await self._batch(batch_id)
        return batch, await self.runs.table(batch)

    async def runs_table(self, request: web.Request) -> web.Response:
        batch_id = request.match_info["id"]
        query = parse_query(request.query, lambda key: request.query.getall(key, []))
        for i, key in enumerate(request.query.getall("rcol", [])):  # range rows of the page's filter form
            lo = _float(request.query.getall("rmin", [])[i:i + 1], f"rmin[{i}]")
            hi = _float(request.query.getall("rmax", [])[i:i + 1], f"rmax[{i}]")
            if key and (lo is not None or hi is not None):
                query.ranges[key] = (lo, hi)
        _, table = await self._table(batch_id)
        page = await asyncio.to_thread(table.query, query)
        params = [(k, v) for k, v in request.query.items() if k not in ("page", "sort", "order")]
        return self.render("runs_table.html", batch_id=batch_id, table=table, page=page, q=query, params=params)

    async def charts(self, request: web.Request) -> web.Response:
        """Convergence and histogram of one output (default: the first numeric one) as JSON."""
        batch_id = request.match_info["id"]
        _, table = await self._table(batch_id)
        numeric = [o for o in table.outputs if table.columns[f"out.{o}"].numeric]
        output = request.query.get("output") or _default_output(table, numeric)
        if output is not None and output not in numeric:
            raise ValidationError("output", f"is not a numeric output of this batch: {output!r}")
        conditions, counts = np.unique(table.columns["condition"].values.astype(str), return_counts=True)
        by_condition = {str(c): int(n) for c, n in zip(conditions, counts, strict=True) if c}
        doc = {"outputs": numeric, "inputs": table.inputs, "output": output, "by_condition": by_condition,
               "convergence": await asyncio.to_thread(table.convergence, output)}
        if output:
            doc["histogram"] = await asyncio.to_thread(table.histogram, output)
        return web.json_response(doc)

    async def overlay(self, request: web.Request) -> web.Response:
        batch = await self._batch(request.match_info["id"])
        config = to_json(batch.config)
        return self.render("overlay.html", title=f"Telemetry across runs: {batch.name or batch.batch_id}",
                           batch_id=batch.batch_id, name=batch.name,
                           variables=list(config.get("telemetry", {}).get("variables", [])),
                           conditions=config.get("early_termination", {}).get("conditions", []))

    async def overlay_data(self, request: web.Request) -> web.Response:
        """One variable of up to OVERLAY_RUNS finished runs, failed runs first, each downsampled."""
        batch_id = request.match_info["id"]
        variable = request.query.get("variable", "")
        if not variable:
            raise ValidationError("variable", "is required")
        runs = _int(request, "runs", OVERLAY_RUNS, 1, 200)
        _, table = await self._table(batch_id)
        status = table.columns["status"].values
        failed = np.flatnonzero(status == "Failed")
        ok = np.flatnonzero(status == "Completed")
        chosen = list(failed[:runs])
        if len(chosen) < runs and len(ok):  # evenly spread over the successful runs
            take = min(runs - len(chosen), len(ok))
            chosen += list(ok[np.linspace(0, len(ok) - 1, take).astype(int)])
        chosen = [table.rows[i] for i in chosen]
        done = len(failed) + len(ok)
        sem = asyncio.Semaphore(8)

        async def series(row: dict) -> dict:
            async with sem:
                reply = await self.gw.telemetry.Query(
                    tel_pb.QueryRequest(job_id=row["job_id"], variables=[variable]), timeout=DEADLINE_S)
            found = [s for s in reply.series if s.variable == variable]
            ts, vs = (list(found[0].timestamps_ns), list(found[0].values)) if found else ([], [])
            t, v = downsample(ts, vs, OVERLAY_POINTS)
            return {"job_id": row["job_id"], "run_id": row["run_id"], "status": row["status"],
                    "reason": row["reason"], "t": t, "v": v}

        return web.json_response({"variable": variable, "runs": await asyncio.gather(*map(series, chosen)),
                                  "finished": done, "failed": len(failed)})

    async def job(self, request: web.Request) -> web.Response:
        job = (await self.gw.scheduler.GetJob(pb.GetJobRequest(job_id=request.match_info["id"]),
                                              timeout=DEADLINE_S)).job
        batch = await self._batch(job.batch_id)
        doc = to_json(job)
        config = to_json(batch.config)
        conditions = [dict(c, parsed=threshold(c.get("condition", "")))
                      for c in config.get("early_termination", {}).get("conditions", [])]
        return self.render("job.html", title=f"Run {job.run_id} of {batch.name or batch.batch_id}", job=doc,
                           batch=progress(batch), conditions=conditions,
                           variables=list(config.get("telemetry", {}).get("variables", [])),
                           running=job.status in (pb.JOB_STATUS_PENDING, pb.JOB_STATUS_RUNNING))

    async def runners(self, request: web.Request) -> web.Response:
        reply = await self.gw.scheduler.ListRunners(pb.ListRunnersRequest(), timeout=DEADLINE_S)
        return self.render("runners.html", title="Runners", runners=to_json(reply).get("runners", []))


def _default_output(table, numeric: list[str]) -> str | None:
    """The first numeric output that varies (more than two distinct values) and is not an echo of the run's
    id, inputs or metadata (summary.json often repeats them), else the first numeric one."""
    for name in numeric:
        if name == "run_id" or name.startswith(("parameters.", "metadata.")):
            continue
        values = table.columns[f"out.{name}"].values
        if len(np.unique(values[~np.isnan(values)])) > 2:
            return name
    return numeric[0] if numeric else None


def _page(request: web.Request) -> int:
    return _int(request, "page", 1, 1, 1_000_000)


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise ValidationError(name, f"must be a whole number from {lo} to {hi}, got {raw!r}")
    return value


def _float(raw: list[str], name: str) -> float | None:
    if not raw or raw[0] == "":
        return None
    try:
        return float(raw[0])
    except ValueError:
        raise ValidationError(name, f"must be a number, got {raw[0]!r}") from None

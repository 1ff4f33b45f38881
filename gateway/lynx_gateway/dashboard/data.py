"""The dashboard's reads from the scheduler: a batch's runs table (cached) and batch progress as JSON."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common import names
from lynx_common.columns import value_of
from lynx_common.rest import to_json
from lynx_gateway.dashboard.runs import RunsTable
from lynx_results.records import RecordsBuilder, inputs_of

DEADLINE_S = 30.0
STREAM_DEADLINE_S = 300.0
TERMINAL = (pb.BATCH_STATUS_COMPLETED, pb.BATCH_STATUS_FAILED, pb.BATCH_STATUS_CANCELLED)
MIN_REFRESH_S = 2.0  # a running batch's table is rebuilt at most this often ...
REFRESH_FACTOR = 5.0  # ... and at most once per five times the last build took
CACHE_BATCHES = 8
STREAM_RUNS = "/lynx.scheduler.v1.SchedulerService/StreamRuns"
PAGE_SIZE = 2000


def _params(items) -> dict:
    return {p.name: value_of(p.value) for p in items}


def run_row(run: pb.Run) -> dict:
    """One runs-table row from a StreamRuns Run."""
    condition = f"{run.termination_variable} {run.termination_condition}" if run.termination_variable else ""
    return {
        "run_id": run.run_id, "job_id": run.job_id, "seed": run.seed,
        "status": names.JOB_STATUS.name(run.status), "reason": names.TERMINATION_REASON.name(run.termination_reason),
        "attempts": run.attempts, "seconds": run.execution_time_secs if run.execution_time_secs else None,
        "runner": run.runner_id, "inputs": _params(run.parameters), "outputs": _params(run.outputs),
        "termination": {"condition": condition} if condition else None, "condition": condition,
        "finished_at": run.finished_at.ToNanoseconds() / 1e9 if run.HasField("finished_at") else None,
    }


def progress(batch: pb.Batch) -> dict:
    """A batch's status and counts as the dashboard and the events stream show them."""
    doc = to_json(batch)
    counts = doc["jobs_by_status"]
    finished = sum(counts.get(s, 0) for s in ("Completed", "Failed", "Cancelled"))
    failed = counts.get("Failed", 0)
    done = counts.get("Completed", 0) + failed
    return {
        "batch_id": batch.batch_id, "name": batch.name, "status": doc["batch"]["status"],
        "status_message": doc.get("status_message", ""), "total_jobs": batch.total_jobs,
        "jobs_by_status": counts, "finished": finished,
        "percent": round(100.0 * finished / batch.total_jobs, 1) if batch.total_jobs else 0.0,
        "early_terminated_jobs": batch.early_terminated_jobs, "failures_by_reason": doc.get("failures_by_reason", {}),
        "throughput_jobs_per_minute": round(batch.throughput_jobs_per_minute, 2),
        "estimated_completion_time_mins": doc.get("estimated_completion_time_mins"),
        "failure_probability": round(failed / done, 4) if done else None,
        "created_at": doc["batch"].get("created_at"), "finished_at": doc["batch"].get("finished_at"),
        "terminal": batch.status in TERMINAL,
    }


@dataclass
class _Entry:
    table: RunsTable
    built_at: float
    took: float
    final: bool


class RunsCache:
    """Runs tables of recently viewed batches; a finished batch's table is built once, a running one's
    at most every MIN_REFRESH_S (or five build times, whichever is longer). One build at a time per batch."""

    def __init__(self, channel: Callable[[], grpc.aio.Channel]) -> None:
        self.channel = channel
        self.entries: dict[str, _Entry] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def build(self, batch: pb.Batch) -> RunsTable:
        """The batch's runs from StreamRuns as wire bytes, read into columns by lynx_results (its fast view of
        the pages, off the event loop), and the table over those columns."""
        stream_runs = self.channel().unary_stream(
            STREAM_RUNS, request_serializer=pb.StreamRunsRequest.SerializeToString, response_deserializer=None)
        builder = RecordsBuilder(inputs_of(batch.config))
        async for page in stream_runs(pb.StreamRunsRequest(batch_id=batch.batch_id, page_size=PAGE_SIZE, columnar=True),
                                      timeout=STREAM_DEADLINE_S):
            await asyncio.to_thread(builder.add_page, page)
        records = await asyncio.to_thread(builder.build)
        return await asyncio.to_thread(RunsTable.from_records, records)

    async def table(self, batch: pb.Batch) -> RunsTable:
        """The batch's runs table. A terminal batch's table will not change: one built before it finished is
        rebuilt once, then kept."""
        batch_id, final = batch.batch_id, batch.status in TERMINAL
        lock = self.locks.setdefault(batch_id, asyncio.Lock())
        async with lock:
            entry = self.entries.get(batch_id)
            now = time.monotonic()
            if entry and (entry.final or (not final and now - entry.built_at < max(MIN_REFRESH_S,
                                                                                    REFRESH_FACTOR * entry.took))):
                return entry.table
            table = await self.build(batch)
            took = time.monotonic() - now
            self.entries.pop(batch_id, None)
            self.entries[batch_id] = _Entry(table, time.monotonic(), took, final)
            while len(self.entries) > CACHE_BATCHES:
                oldest = next(iter(self.entries))
                self.entries.pop(oldest)
                self.locks.pop(oldest, None)
            return table

"""The dashboard's reads from the scheduler: a batch's runs table (cached) and batch progress as JSON."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import grpc

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_common import names
from lynx_common.columns import value_of
from lynx_common.rest import to_json
from lynx_gateway.dashboard.runs import RunsTable

DEADLINE_S = 30.0
STREAM_DEADLINE_S = 300.0
TERMINAL = (pb.BATCH_STATUS_COMPLETED, pb.BATCH_STATUS_FAILED, pb.BATCH_STATUS_CANCELLED)
MIN_REFRESH_S = 2.0  # a running batch's table is rebuilt at most this often ...
REFRESH_FACTOR = 5.0  # ... and at most once per five times the last build took
CACHE_BATCHES = 8


def _params(items) -> dict:
    return {p.name: value_of(p.value) for p in items}


def run_row(run: pb.Run) -> dict:
    """One runs-table row from a StreamRuns Run."""
    termination = None
    if run.termination_variable:
        termination = {"variable": run.termination_variable, "condition": run.termination_condition,
                       "value": run.termination_value if run.HasField("termination_value") else None}
    return {
        "run_id": run.run_id, "job_id": run.job_id, "seed": run.seed,
        "status": names.JOB_STATUS.name(run.status), "reason": names.TERMINATION_REASON.name(run.termination_reason),
        "attempts": run.attempts, "seconds": run.execution_time_secs if run.execution_time_secs else None,
        "runner": run.runner_id, "inputs": _params(run.parameters), "outputs": _params(run.outputs),
        "termination": termination,
        "finished_at": run.finished_at.ToNanoseconds() / 1e9 if run.HasField("finished_at") else None,
    }


def job_row(job: pb.Job) -> dict:
    """The same row from a ListJobs Job (for a scheduler without StreamRuns)."""
    r = job.result
    finished = job.status in (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED)
    termination = None
    if r.termination_variable:
        termination = {"variable": r.termination_variable, "condition": r.termination_condition,
                       "value": r.termination_value if r.HasField("termination_value") else None}
    return {
        "run_id": job.run_id, "job_id": job.job_id, "seed": job.seed,
        "status": names.JOB_STATUS.name(job.status),
        "reason": names.TERMINATION_REASON.name(r.termination_reason) if finished else "",
        "attempts": job.attempts, "seconds": r.execution_time_secs if finished and r.execution_time_secs else None,
        "runner": job.runner_id or r.metadata.get("runner_id", ""), "inputs": _params(job.parameters),
        "outputs": _params(r.outputs), "termination": termination,
        "finished_at": (job.attempt_history[-1].ended_at.ToNanoseconds() / 1e9
                        if finished and job.attempt_history and job.attempt_history[-1].HasField("ended_at") else None),
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

    def __init__(self, stub: pb_grpc.SchedulerServiceStub) -> None:
        self.stub = stub
        self.entries: dict[str, _Entry] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.stream_runs = True  # False once the scheduler said UNIMPLEMENTED

    async def build(self, batch_id: str) -> RunsTable:
        """Fetch the batch's runs (StreamRuns; ListJobs from a scheduler without it) and build the table off
        the event loop (turning 100,000 messages into columns takes seconds)."""
        if self.stream_runs:
            try:
                call = self.stub.StreamRuns(pb.StreamRunsRequest(batch_id=batch_id, page_size=2000),
                                            timeout=STREAM_DEADLINE_S)
                pages = [page async for page in call]
                return await asyncio.to_thread(lambda: RunsTable.build(run_row(r) for p in pages for r in p.runs))
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                self.stream_runs = False
        reply = await self.stub.ListJobs(pb.ListJobsRequest(batch_id=batch_id), timeout=STREAM_DEADLINE_S)
        return await asyncio.to_thread(lambda: RunsTable.build(job_row(j) for j in reply.jobs))

    async def table(self, batch_id: str, final: bool) -> RunsTable:
        """The batch's runs table; `final` says the batch is terminal (its table will not change, so a table
        built before it finished is rebuilt once, then kept)."""
        lock = self.locks.setdefault(batch_id, asyncio.Lock())
        async with lock:
            entry = self.entries.get(batch_id)
            now = time.monotonic()
            if entry and (entry.final or (not final and now - entry.built_at < max(MIN_REFRESH_S,
                                                                                    REFRESH_FACTOR * entry.took))):
                return entry.table
            table = await self.build(batch_id)
            took = time.monotonic() - now
            self.entries.pop(batch_id, None)
            self.entries[batch_id] = _Entry(table, time.monotonic(), took, final)
            while len(self.entries) > CACHE_BATCHES:
                oldest = next(iter(self.entries))
                self.entries.pop(oldest)
                self.locks.pop(oldest, None)
            return table

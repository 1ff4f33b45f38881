"""A batch's runs table (StreamRuns): one Run per job, inputs from the sample chunks, outputs and
final status from the stored result, read page by page."""

from __future__ import annotations

from collections.abc import AsyncIterator

from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.columns import parameter_value
from lynx_common.names import JOB_STATUS
from lynx_scheduler import policy
from lynx_scheduler.columns import RunSample, SampleCache
from lynx_scheduler.convert import _ts
from lynx_scheduler.rows import JobRow
from lynx_scheduler.store import Store

DEFAULT_PAGE = 1000
MAX_PAGE = 10_000


def page_size(requested: int) -> int:
    """The page size StreamRuns uses: 0 means DEFAULT_PAGE; capped at MAX_PAGE."""
    return DEFAULT_PAGE if requested <= 0 else min(requested, MAX_PAGE)


def run_of(job: JobRow, sample: RunSample) -> pb.Run:
    """One row of the runs table: the job's inputs, seed, and its last result's outputs and ending."""
    run = pb.Run(
        job_id=job.job_id,
        run_id=job.run_id,
        seed=sample.seed or 0,
        parameters=[ppb.Parameter(name=name, value=parameter_value(v)) for name, v in sample.parameters.items()],
        status=JOB_STATUS.value(job.status),
        attempts=job.attempts,
        runner_id=job.runner_id or "",
    )
    if job.finished_at is not None and job.status in policy.TERMINAL:
        run.finished_at.CopyFrom(_ts(job.finished_at))
    if job.result and job.status in policy.TERMINAL:
        result = pb.JobResult.FromString(job.result)
        run.outputs.extend(result.outputs)
        run.termination_reason = result.termination_reason
        run.execution_time_secs = result.execution_time_secs
        run.termination_variable = result.termination_variable
        run.termination_condition = result.termination_condition
        if result.HasField("termination_value"):
            run.termination_value = result.termination_value
        if result.HasField("error_message"):
            run.error_message = result.error_message
        run.exit_code = result.exit_code
    return run


async def stream_runs(store: Store, batch_id: str, size: int) -> AsyncIterator[pb.StreamRunsResponse]:
    """Pages of `size` runs in run order. Each page is one indexed query; sample chunks are decoded
    once each (runs of a chunk are consecutive), so memory stays at one page and two chunks."""
    samples = SampleCache(store.sample)
    after = -1
    while True:
        jobs = await store.runs_page(batch_id, after, size)
        if not jobs:
            return
        yield pb.StreamRunsResponse(runs=[run_of(j, await samples.of(j)) for j in jobs])
        if len(jobs) < size:
            return
        after = jobs[-1].run_id

"""Store rows to scheduler protos."""

from __future__ import annotations

import time

from google.protobuf import struct_pb2, timestamp_pb2
from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_scheduler import core
from lynx_scheduler.store import BatchRow, JobRow, RunnerRow

_BATCH_STATUS = {
    core.PENDING: pb.BATCH_STATUS_PENDING,
    core.RUNNING: pb.BATCH_STATUS_RUNNING,
    core.COMPLETED: pb.BATCH_STATUS_COMPLETED,
    core.FAILED: pb.BATCH_STATUS_FAILED,
    core.CANCELLED: pb.BATCH_STATUS_CANCELLED,
}
_JOB_STATUS = {
    core.PENDING: pb.JOB_STATUS_PENDING,
    core.RUNNING: pb.JOB_STATUS_RUNNING,
    core.COMPLETED: pb.JOB_STATUS_COMPLETED,
    core.FAILED: pb.JOB_STATUS_FAILED,
    core.CANCELLED: pb.JOB_STATUS_CANCELLED,
}


def _ts(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def batch_to_proto(b: BatchRow, with_config: bool = False) -> pb.Batch:
    """A Batch with derived status, progress, throughput and estimate."""
    status = core.batch_status(b.counts, b.cancelled)
    finished = sum(b.counts.get(s, 0) for s in core.TERMINAL)
    until = b.finished_at if b.finished_at is not None else time.time()
    throughput = core.throughput_per_minute(finished, b.started_at, until)
    out = pb.Batch(
        batch_id=b.batch_id,
        name=b.name,
        status=_BATCH_STATUS[status],
        total_jobs=b.total_jobs,
        jobs_by_status=b.counts,
        throughput_jobs_per_minute=throughput,
        seed=b.seed,
        created_at=_ts(b.created_at),
        started_at=_ts(b.started_at),
        finished_at=_ts(b.finished_at),
    )
    if status in (core.PENDING, core.RUNNING):
        estimate = core.estimate_minutes(b.total_jobs - finished, throughput)
        if estimate is not None:
            out.estimated_completion_time_mins = estimate
    if with_config:
        out.config.CopyFrom(cfg.BatchConfig.FromString(b.config))
    return out


def job_to_proto(j: JobRow) -> pb.Job:
    """A Job with its parameters and last result."""
    params = struct_pb2.Struct()
    params.update(j.parameters)
    out = pb.Job(
        job_id=j.job_id,
        batch_id=j.batch_id,
        run_id=j.run_id,
        status=_JOB_STATUS[j.status],
        parameters=params,
        attempts=j.attempts,
        runner_id=j.runner_id or "",
    )
    if j.result:
        out.result.CopyFrom(pb.JobResult.FromString(j.result))
    return out


def runner_to_proto(r: RunnerRow) -> pb.Runner:
    """A Runner as stored, with its live lease count."""
    return pb.Runner(
        runner_id=r.runner_id,
        name=r.name,
        engines=r.engines,
        capabilities=pb.RunnerCapabilities.FromString(r.capabilities),
        status=pb.RUNNER_STATUS_ONLINE if r.online else pb.RUNNER_STATUS_OFFLINE,
        last_heartbeat=_ts(r.last_heartbeat),
        running_jobs=r.running_jobs,
    )


def result_of(job_id: str, reason: str, message: str) -> bytes:
    """A serialized failed JobResult written by the scheduler itself."""
    return pb.JobResult(
        job_id=job_id, success=False, error_message=message, termination_reason=reason
    ).SerializeToString()

"""Store rows to scheduler protos."""

from __future__ import annotations

import time

from google.protobuf import struct_pb2, timestamp_pb2

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_scheduler import core
from lynx_scheduler.store import AttemptRow, BatchRow, JobRow, RunnerRow

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


def batch_to_proto(b: BatchRow, with_config: bool = False, routing_message: str = "") -> pb.Batch:
    """A Batch with derived status, progress, throughput, estimate, failures by reason and a
    status message (the abort reason, else `routing_message`)."""
    status = core.batch_status(b.counts, b.cancelled, b.aborted)
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
        status_message=b.status_message or routing_message,
        early_terminated_jobs=b.failures_by_reason.get("early_termination", 0),
        failures_by_reason=b.failures_by_reason,
        warnings=b.warnings,
    )
    if status in (core.PENDING, core.RUNNING):
        estimate = core.estimate_minutes(b.total_jobs - finished, throughput)
        if estimate is not None:
            out.estimated_completion_time_mins = estimate
    if with_config:
        out.config.CopyFrom(cfg.BatchConfig.FromString(b.config))
    return out


def job_to_proto(j: JobRow) -> pb.Job:
    """A Job with its parameters, last result, backoff, runner losses and attempt history."""
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
        runner_losses=j.runner_losses,
        attempt_history=[attempt_to_proto(a) for a in j.history],
    )
    if j.result:
        out.result.CopyFrom(pb.JobResult.FromString(j.result))
    if j.status == core.PENDING and j.not_before:
        out.not_before.CopyFrom(_ts(j.not_before))
    return out


def attempt_to_proto(a: AttemptRow) -> pb.Attempt:
    """One attempt of a job: runner, times, outcome and the reports it ignored."""
    out = pb.Attempt(
        attempt=a.attempt,
        runner_id=a.runner_id,
        started_at=_ts(a.started_at),
        ended_at=_ts(a.ended_at),
        outcome=a.outcome,
        exit_code=a.exit_code,
        termination_reason=a.reason,
        ignored_reports=a.ignored_reports,
    )
    if a.error_message is not None:
        out.error_message = a.error_message
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


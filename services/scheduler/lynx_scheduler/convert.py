"""Store rows to scheduler protos and back: statuses, reasons and outcomes as enums, results, leases."""

from __future__ import annotations

import time

from google.protobuf import timestamp_pb2

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.columns import parameter_value
from lynx_common.names import ATTEMPT_OUTCOME, BATCH_STATUS, JOB_STATUS, TERMINATION_REASON
from lynx_common.run_config import run_config_json
from lynx_scheduler import policy
from lynx_scheduler.columns import RunSample
from lynx_scheduler.rows import AttemptRow, BatchRow, JobRow, Report, RunnerRow


def _ts(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def batch_to_proto(b: BatchRow, with_config: bool = False, routing_message: str = "") -> pb.Batch:
    """A Batch with derived status, progress, throughput, estimate, failures by reason and a
    status message (the abort reason, else `routing_message`)."""
    status = policy.batch_status(b.counts, b.cancelled, b.aborted)
    finished = sum(b.counts.get(s, 0) for s in policy.TERMINAL)
    until = b.finished_at if b.finished_at is not None else time.time()
    throughput = policy.throughput_per_minute(finished, b.started_at, until)
    out = pb.Batch(
        batch_id=b.batch_id,
        name=b.name,
        status=BATCH_STATUS.value(status),
        total_jobs=b.total_jobs,
        jobs_by_status=[
            pb.JobStatusCount(status=JOB_STATUS.value(s), count=b.counts.get(s, 0)) for s in policy.JOB_STATUSES
        ],
        throughput_jobs_per_minute=throughput,
        seed=b.seed,
        created_at=_ts(b.created_at),
        started_at=_ts(b.started_at),
        finished_at=_ts(b.finished_at),
        status_message=b.status_message or routing_message,
        early_terminated_jobs=b.failures_by_reason.get("early_termination", 0),
        failures_by_reason=[
            pb.TerminationReasonCount(reason=TERMINATION_REASON.value(r), count=n)
            for r, n in sorted(b.failures_by_reason.items())
        ],
        warnings=b.warnings,
    )
    if status in (policy.PENDING, policy.RUNNING):
        estimate = policy.estimate_minutes(b.total_jobs - finished, throughput)
        if estimate is not None:
            out.estimated_completion_time_mins = estimate
    if with_config:
        out.config.CopyFrom(cfg.BatchConfig.FromString(b.config))
    return out


def job_result(j: JobRow) -> pb.JobResult | None:
    """The job's last result (a runner's, or the one the scheduler wrote), with its job id."""
    if not j.result:
        return None
    result = pb.JobResult.FromString(j.result)
    result.job_id = j.job_id
    return result


def job_to_proto(j: JobRow, sample: RunSample) -> pb.Job:
    """A Job with its typed parameters (declared order), seed, last result, backoff, runner
    losses and attempt history."""
    out = pb.Job(
        job_id=j.job_id,
        batch_id=j.batch_id,
        run_id=j.run_id,
        status=JOB_STATUS.value(j.status),
        parameters=[ppb.Parameter(name=name, value=parameter_value(v)) for name, v in sample.parameters.items()],
        attempts=j.attempts,
        runner_id=j.runner_id or "",
        runner_losses=j.runner_losses,
        attempt_history=[attempt_to_proto(a) for a in j.history],
        seed=sample.seed or 0,
    )
    result = job_result(j)
    if result is not None:
        out.result.CopyFrom(result)
    if j.status == policy.PENDING and j.not_before:
        out.not_before.CopyFrom(_ts(j.not_before))
    return out


def attempt_to_proto(a: AttemptRow) -> pb.Attempt:
    """One attempt of a job: runner, times, outcome and the reports it ignored."""
    out = pb.Attempt(
        attempt=a.attempt,
        runner_id=a.runner_id,
        started_at=_ts(a.started_at),
        ended_at=_ts(a.ended_at),
        outcome=ATTEMPT_OUTCOME.value(a.outcome),
        exit_code=a.exit_code,
        termination_reason=TERMINATION_REASON.value(a.reason),
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


def scheduler_result(reason: str, message: str, attempt: int = 0) -> bytes:
    """A serialized failed JobResult the scheduler writes itself (the job id is filled in on read)."""
    return pb.JobResult(
        attempt=attempt, success=False, error_message=message,
        termination_reason=TERMINATION_REASON.value(reason), exit_code=0,
    ).SerializeToString()


def finished_report(report: pb.JobFinished, runner_id: str) -> Report:
    """A runner's JobFinished as the scheduler records it."""
    result = report.result
    result.job_id, result.attempt = report.job_id, report.attempt
    result.metadata["runner_id"] = runner_id
    reason = TERMINATION_REASON.name(result.termination_reason)
    if result.success:
        outcome = "completed"
    else:
        outcome = "cancelled" if reason == "cancelled" else "failed"
    return Report(
        outcome, result.exit_code, reason,
        result.error_message if result.HasField("error_message") else None, result.SerializeToString(),
    )


def job_lease(
    batch: BatchRow, config: cfg.BatchConfig, job: JobRow, attempt: int, sample: RunSample
) -> pb.JobLease:
    """The lease of one attempt: the run config the scenario reads, and the batch's limits."""
    sim = config.simulation
    ids: dict[str, object] = {"batch_id": batch.batch_id, "job_id": job.job_id, "batch_seed": batch.seed}
    if sample.seed is not None:
        ids["seed"] = sample.seed
    document = run_config_json(
        job.run_id, sample.parameters, simulation_name=sim.name, simulation_version=sim.version,
        duration_minutes=sim.duration_minutes, sampling_method=config.monte_carlo.sampling_method,
        generated_at=batch.created_at, ids=ids,
    )
    return pb.JobLease(
        job_id=job.job_id,
        batch_id=batch.batch_id,
        attempt=attempt,
        engine=batch.engine,
        run_config_json=document,
        timeout_seconds=config.compute.job_timeout_seconds,
        early_termination=config.early_termination,
        telemetry=config.telemetry,
        compute=config.compute,
        outputs=config.results.outputs,
    )

"""JSON (the tutorial's shapes) to protos and back."""

from __future__ import annotations

import json

from google.protobuf import json_format

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx_common.errors import ValidationError

STATUS_NAMES = {
    "BATCH_STATUS_PENDING": "Pending",
    "BATCH_STATUS_RUNNING": "Running",
    "BATCH_STATUS_COMPLETED": "Completed",
    "BATCH_STATUS_FAILED": "Failed",
    "BATCH_STATUS_CANCELLED": "Cancelled",
    "JOB_STATUS_PENDING": "Pending",
    "JOB_STATUS_RUNNING": "Running",
    "JOB_STATUS_COMPLETED": "Completed",
    "JOB_STATUS_FAILED": "Failed",
    "JOB_STATUS_CANCELLED": "Cancelled",
    "RUNNER_STATUS_ONLINE": "Online",
    "RUNNER_STATUS_OFFLINE": "Offline",
}


JOB_STATUS_ORDER = ("Pending", "Running", "Completed", "Failed", "Cancelled")


def config_from_json(document: object) -> cfg.BatchConfig:
    """Parse the `config` object; `dispersions` is a mapping name -> {distribution, units}."""
    if not isinstance(document, dict):
        raise ValidationError("config", "must be an object")
    document = dict(document)
    dispersions = document.pop("dispersions", None)
    if dispersions is None:
        raise ValidationError("config.dispersions", "is required")
    if not isinstance(dispersions, dict):
        raise ValidationError("config.dispersions", "must be an object of parameter name -> {distribution, units}")
    listed = []
    for name, spec in dispersions.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("distribution"), dict):
            raise ValidationError(f"config.dispersions.{name}.distribution", "must be an object with a type")
        listed.append({"name": name, **spec})
    document["dispersions"] = listed
    try:
        return json_format.ParseDict(document, cfg.BatchConfig())
    except json_format.ParseError as exc:
        raise ValidationError("config", str(exc)) from None


def _positive_int(body: dict, name: str, required: bool = False) -> int:
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationError(name, "is required")
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(name, f"must be a positive whole number, got {value!r}")
    return value


def _only(body: object, allowed: tuple[str, ...], what: str) -> dict:
    if not isinstance(body, dict):
        raise ValidationError("body", f"must be a JSON object with {', '.join(allowed)}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValidationError(unknown[0], f"is not a field of {what} ({', '.join(allowed)})")
    return body


def preview_request(body: object) -> pb.PreviewRequest:
    """The POST /preview body {runs_override?, limit?, config} as a PreviewRequest."""
    body = _only(body, ("name", "runs_override", "limit", "config"), "a preview")
    if "config" not in body:
        raise ValidationError("config", "is required")
    return pb.PreviewRequest(
        runs_override=_positive_int(body, "runs_override"),
        limit=_positive_int(body, "limit"),
        config=config_from_json(body["config"]),
    )


def extend_request(batch_id: str, body: object) -> pb.ExtendBatchRequest:
    """The POST /batches/{id}/extend body {runs} as an ExtendBatchRequest."""
    body = _only(body, ("runs",), "an extension")
    return pb.ExtendBatchRequest(batch_id=batch_id, runs=_positive_int(body, "runs", required=True))


def preview_json(chunks: list[pb.PreviewResponse]) -> dict:
    """POST /preview: the seed, the caveats and every run config."""
    first = chunks[0] if chunks else pb.PreviewResponse()
    return {
        "seed": first.seed,
        "total_runs": first.total_runs,
        "warnings": list(first.warnings),
        "run_configs": [json.loads(doc) for c in chunks for doc in c.run_config_json],
    }


def submit_request(body: object) -> pb.SubmitBatchRequest:
    """The POST /jobs body {name, runs_override, config} as a SubmitBatchRequest."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object with name, runs_override and config")
    unknown = sorted(set(body) - {"name", "runs_override", "config"})
    if unknown:
        raise ValidationError(unknown[0], "is not a field of a batch submission (name, runs_override, config)")
    name = body.get("name", "")
    if not isinstance(name, str):
        raise ValidationError("name", "must be a string")
    runs = body.get("runs_override")
    if runs is not None and (isinstance(runs, bool) or not isinstance(runs, int) or runs < 1):
        raise ValidationError("runs_override", f"must be a positive whole number, got {runs!r}")
    if "config" not in body:
        raise ValidationError("config", "is required")
    return pb.SubmitBatchRequest(name=name, runs_override=runs or 0, config=config_from_json(body["config"]))


def _iso(ts) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def config_to_json(config: cfg.BatchConfig) -> dict:
    """The config back in the submitted shape (dispersions as a mapping)."""
    out = json_format.MessageToDict(config, preserving_proto_field_name=True)
    out["dispersions"] = {
        d["name"]: {k: v for k, v in d.items() if k != "name"} for d in out.get("dispersions", [])
    }
    return out


def batch_json(batch: pb.Batch) -> dict:
    """GET /batches/{id}: batch, jobs_by_status, throughput_jobs_per_minute, estimate."""
    summary = {
        "batch_id": batch.batch_id,
        "name": batch.name,
        "status": STATUS_NAMES[pb.BatchStatus.Name(batch.status)],
        "total_jobs": batch.total_jobs,
        "seed": batch.seed,
        "created_at": _iso(batch.created_at),
        "started_at": _iso(batch.started_at),
        "finished_at": _iso(batch.finished_at),
    }
    if batch.HasField("config"):
        summary["config"] = config_to_json(batch.config)
    return {
        "batch": summary,
        "jobs_by_status": {name: batch.jobs_by_status.get(name, 0) for name in JOB_STATUS_ORDER},
        "throughput_jobs_per_minute": batch.throughput_jobs_per_minute,
        "estimated_completion_time_mins": (
            batch.estimated_completion_time_mins if batch.HasField("estimated_completion_time_mins") else None
        ),
        "early_terminated_jobs": batch.early_terminated_jobs,
        "failures_by_reason": dict(sorted(batch.failures_by_reason.items())),
        "status_message": batch.status_message or None,
        "warnings": list(batch.warnings),
    }


def result_json(result: pb.JobResult) -> dict:
    """A job result in the tutorial's shape (plus exit code, reason and attempt)."""
    return {
        "job_id": result.job_id,
        "success": result.success,
        "execution_time_secs": result.execution_time_secs,
        "output_files": list(result.output_files),
        "metadata": dict(result.metadata),
        "error_message": result.error_message if result.HasField("error_message") else None,
        "exit_code": result.exit_code,
        "termination_reason": result.termination_reason,
        "attempt": result.attempt,
        "files": [
            {"path": f.path, "relative_path": f.relative_path, "size_bytes": f.size_bytes, "sha256": f.sha256}
            for f in result.files
        ],
        "telemetry_samples_sent": result.telemetry_samples_sent,
        "telemetry_samples_dropped": result.telemetry_samples_dropped,
        "termination": (
            {
                "variable": result.termination_variable,
                "condition": result.termination_condition,
                "value": result.termination_value if result.HasField("termination_value") else None,
            }
            if result.termination_variable
            else None
        ),
    }


def attempt_json(attempt: pb.Attempt) -> dict:
    """One attempt of a job: where and when it ran and how it ended."""
    return {
        "attempt": attempt.attempt,
        "runner_id": attempt.runner_id or None,
        "started_at": _iso(attempt.started_at),
        "ended_at": _iso(attempt.ended_at),
        "outcome": attempt.outcome,
        "exit_code": attempt.exit_code,
        "termination_reason": attempt.termination_reason or None,
        "error_message": attempt.error_message if attempt.HasField("error_message") else None,
        "ignored_reports": attempt.ignored_reports,
    }


def job_json(job: pb.Job) -> dict:
    """GET /jobs/{id}: the job, its parameters and its last result."""
    return {
        "job_id": job.job_id,
        "batch_id": job.batch_id,
        "run_id": job.run_id,
        "status": STATUS_NAMES[pb.JobStatus.Name(job.status)],
        "parameters": json_format.MessageToDict(job.parameters),
        "attempt_count": job.attempts,
        "attempts": [attempt_json(a) for a in job.attempt_history],
        "runner_losses": job.runner_losses,
        "not_before": _iso(job.not_before),
        "runner_id": job.runner_id or None,
        "result": result_json(job.result) if job.HasField("result") else None,
    }


def runner_json(runner: pb.Runner) -> dict:
    """GET /runners/{id}: the runner with `capabilities` in the tutorial's shape."""
    caps = runner.capabilities
    return {
        "runner_id": runner.runner_id,
        "name": runner.name,
        "status": STATUS_NAMES[pb.RunnerStatus.Name(runner.status)],
        "engines": list(runner.engines),
        "capabilities": {
            "max_concurrent_jobs": caps.max_concurrent_jobs,
            "supported_simulation_types": list(caps.supported_simulation_types),
            "gpu_available": caps.gpu_available,
            "memory_gb": caps.memory_gb,
            "cpu_cores": caps.cpu_cores,
        },
        "last_heartbeat": _iso(runner.last_heartbeat),
        "running_jobs": runner.running_jobs,
    }


def telemetry_json(job_id: str, reply: tel_pb.QueryResponse) -> dict:
    """GET /jobs/{id}/telemetry: one series per variable."""
    return {
        "job_id": job_id,
        "series": {
            s.variable: {"timestamps_ns": list(s.timestamps_ns), "values": list(s.values)} for s in reply.series
        },
    }

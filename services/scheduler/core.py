"""Scheduling rules with no gRPC or SQL: config checks, status derivation, retry decisions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx_common.conditions import parse_condition
from lynx_common.errors import ValidationError

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "Pending",
    "Running",
    "Completed",
    "Failed",
    "Cancelled",
)
JOB_STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
DEFAULT_ENGINE = "basilisk"
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES_CAP = 100
# Seeds travel in JSON run configs; keep them exact as IEEE doubles.
MAX_SEED = 2**53 - 1
MAX_TIMEOUT_S = 7 * 24 * 3600.0
MAX_CHECK_HZ = 1000.0
# Failures that are the study's answer, not a fault: never retried.
NOT_RETRIED = frozenset({"early_termination", "cancelled"})


@dataclass(frozen=True)
class BatchPlan:
    """What a validated config asks for."""

    runs: int
    engine: str
    simulation_type: str
    max_parallel_jobs: int
    max_retries: int


def validate_config(config: cfg.BatchConfig, runs_override: int = 0) -> BatchPlan:
    """Check everything but the distributions (the sampler owns those); errors name the field."""
    runs = runs_override if runs_override > 0 else config.monte_carlo.runs
    if runs_override < 0:
        raise ValidationError("runs_override", f"must not be negative, got {runs_override}")
    if runs < 1:
        raise ValidationError("monte_carlo.runs", f"must be at least 1, got {runs}")
    mc = config.monte_carlo
    if mc.HasField("seed") and not 0 <= mc.seed <= MAX_SEED:
        raise ValidationError("monte_carlo.seed", f"must be between 0 and {MAX_SEED}, got {mc.seed}")
    compute = config.compute
    if compute.max_parallel_jobs < 0:
        raise ValidationError("compute.max_parallel_jobs", "must not be negative")
    _check_range("compute.job_timeout_seconds", compute.job_timeout_seconds, 0, MAX_TIMEOUT_S)
    max_retries = compute.max_retries if compute.HasField("max_retries") else DEFAULT_MAX_RETRIES
    if not 0 <= max_retries <= MAX_RETRIES_CAP:
        raise ValidationError(
            "compute.max_retries", f"must be between 0 and {MAX_RETRIES_CAP}, got {max_retries}"
        )
    et = config.early_termination
    _check_range("early_termination.check_frequency_hz", et.check_frequency_hz, 0, MAX_CHECK_HZ)
    for i, c in enumerate(et.conditions):
        parse_condition(c.variable, c.condition, c.description, f"early_termination.conditions[{i}]")
    tel = config.telemetry
    _check_range("telemetry.sampling_rate_hz", tel.sampling_rate_hz, 0, math.inf)
    _check_range("telemetry.buffer_flush_interval_seconds", tel.buffer_flush_interval_seconds, 0, 3600)
    engine = config.simulation.engine or DEFAULT_ENGINE
    return BatchPlan(
        runs=runs,
        engine=engine,
        simulation_type=config.simulation.type or engine,
        max_parallel_jobs=compute.max_parallel_jobs,
        max_retries=max_retries,
    )


def _check_range(field: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ValidationError(field, f"must be a finite number between {low:g} and {high:g}, got {value!r}")


def next_status_after_failure(reason: str, failures: int, max_retries: int) -> str:
    """Status of a job whose attempt failed; `failures` counts this one."""
    if reason == "cancelled":
        return CANCELLED
    if reason in NOT_RETRIED or failures > max_retries:
        return FAILED
    return PENDING


def batch_status(counts: dict[str, int], cancelled: bool) -> str:
    """Batch status from job counts: Pending, Running, Completed, Failed or Cancelled.

    A terminal status is reported only once every job is terminal, so a cancelled batch
    reads Running until its last running job has been killed.
    """
    total = sum(counts.values())
    if total and sum(counts.get(s, 0) for s in TERMINAL) == total:
        if cancelled:
            return CANCELLED
        return COMPLETED if counts.get(COMPLETED, 0) else FAILED
    if counts.get(PENDING, 0) == total:
        return PENDING
    return RUNNING


def throughput_per_minute(finished: int, started_at: float | None, until: float) -> float:
    """Finished jobs per minute since the first job started."""
    if not finished or started_at is None or until <= started_at:
        return 0.0
    return round(finished / ((until - started_at) / 60.0), 3)


def estimate_minutes(remaining: int, throughput: float) -> float | None:
    """Minutes until the remaining jobs finish at the measured throughput, if measured."""
    if throughput <= 0:
        return None
    return round(remaining / throughput, 2)


def run_config(
    run_id: int, parameters: dict, config: cfg.BatchConfig, created_at: float, ids: dict
) -> dict:
    """The JSON document a scenario reads from TETRYX_RUN_CONFIG."""
    sim = config.simulation
    return {
        "run_id": run_id,
        "parameters": parameters,
        "metadata": {
            "simulation_name": sim.name,
            "simulation_version": sim.version,
            "duration_minutes": sim.duration_minutes,
            "sampling_method": config.monte_carlo.sampling_method or "latin_hypercube",
            "generated_at": iso(created_at),
            **ids,
        },
    }


def iso(ts: float) -> str:
    """UTC ISO-8601 with a Z, as in the tutorial."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

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
DEFAULT_BACKOFF_S = 1.0
DEFAULT_BACKOFF_MAX_S = 60.0
MAX_BACKOFF_S = 24 * 3600.0
DEFAULT_MAX_RUNNER_LOSSES = 3
MAX_RUNNER_LOSSES_CAP = 100
RUNNER_LOST = "runner_lost"


@dataclass(frozen=True)
class RetryPolicy:
    """How a batch treats failed and lost attempts (compute.* with their defaults)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_seconds: float = DEFAULT_BACKOFF_S
    backoff_max_seconds: float = DEFAULT_BACKOFF_MAX_S
    retry_early_termination: bool = False
    max_runner_losses: int = DEFAULT_MAX_RUNNER_LOSSES
    max_failed_jobs: float | None = None  # None: no failure budget

    @classmethod
    def of(cls, config: cfg.BatchConfig) -> RetryPolicy:
        """The policy a (validated) config asks for."""
        c = config.compute
        return cls(
            max_retries=c.max_retries if c.HasField("max_retries") else DEFAULT_MAX_RETRIES,
            backoff_seconds=c.retry_backoff_seconds if c.HasField("retry_backoff_seconds") else DEFAULT_BACKOFF_S,
            backoff_max_seconds=(
                c.retry_backoff_max_seconds if c.HasField("retry_backoff_max_seconds") else DEFAULT_BACKOFF_MAX_S
            ),
            retry_early_termination=c.retry_early_termination,
            max_runner_losses=(
                c.max_runner_losses if c.HasField("max_runner_losses") else DEFAULT_MAX_RUNNER_LOSSES
            ),
            max_failed_jobs=c.max_failed_jobs if c.HasField("max_failed_jobs") else None,
        )


@dataclass(frozen=True)
class Decision:
    """What happens to a job after one of its attempts ended."""

    status: str  # the job's next status
    charge: bool = False  # counts against max_retries
    lost: bool = False  # counts against max_runner_losses
    delay: float = 0.0  # seconds before a retry may be leased


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
    _check_retry_fields(compute)
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


def _check_retry_fields(compute: cfg.Compute) -> None:
    """compute.max_failed_jobs, retry backoff and max_runner_losses, each named on error."""
    if compute.HasField("max_failed_jobs"):
        x = compute.max_failed_jobs
        if not math.isfinite(x) or x <= 0 or (x >= 1 and not float(x).is_integer()):
            raise ValidationError(
                "compute.max_failed_jobs",
                f"must be a whole number of jobs (at least 1) or a fraction between 0 and 1, got {x!r}",
            )
    for name in ("retry_backoff_seconds", "retry_backoff_max_seconds"):
        if compute.HasField(name):
            _check_range(f"compute.{name}", getattr(compute, name), 0, MAX_BACKOFF_S)
    if compute.HasField("max_runner_losses") and not 1 <= compute.max_runner_losses <= MAX_RUNNER_LOSSES_CAP:
        raise ValidationError(
            "compute.max_runner_losses",
            f"must be between 1 and {MAX_RUNNER_LOSSES_CAP}, got {compute.max_runner_losses}",
        )


def backoff_delay(retry: int, policy: RetryPolicy) -> float:
    """Seconds before retry number `retry` (from 1): backoff_seconds doubling, capped."""
    if retry < 1 or policy.backoff_seconds <= 0:
        return 0.0
    return min(policy.backoff_seconds * 2.0 ** min(retry - 1, 60), policy.backoff_max_seconds)


def decide_after_failure(reason: str, failures: int, policy: RetryPolicy, stopping: bool = False) -> Decision:
    """A failed attempt: retry with backoff, or fail the job. `failures` counts this one.

    `stopping` means the batch was cancelled or aborted, so nothing is retried.
    """
    if reason == "cancelled":
        return Decision(CANCELLED)
    if stopping:
        return Decision(FAILED, charge=True)
    if reason == "early_termination" and not policy.retry_early_termination:
        return Decision(FAILED, charge=True)
    if failures > policy.max_retries:
        return Decision(FAILED, charge=True)
    return Decision(PENDING, charge=True, delay=backoff_delay(failures, policy))


def decide_after_loss(losses: int, policy: RetryPolicy, stopping: bool = False) -> Decision:
    """An attempt lost with its runner; `losses` counts this one. Not charged to max_retries."""
    if stopping:
        return Decision(CANCELLED, lost=True)
    if losses >= policy.max_runner_losses:
        return Decision(FAILED, lost=True)
    return Decision(PENDING, lost=True)


def failure_budget(max_failed_jobs: float | None, total_jobs: int) -> float:
    """The most failed jobs a batch may have: a count (>= 1), a fraction of the batch (< 1) or no limit."""
    if max_failed_jobs is None:
        return math.inf
    if max_failed_jobs >= 1:
        return float(max_failed_jobs)
    return max_failed_jobs * total_jobs


def budget_exceeded(failed: int, max_failed_jobs: float | None, total_jobs: int) -> bool:
    """Whether `failed` jobs exceed the batch's failure budget."""
    return failed > failure_budget(max_failed_jobs, total_jobs)


def budget_message(failed: int, max_failed_jobs: float, total_jobs: int) -> str:
    """Batch.status_message of an aborted batch."""
    return (
        f"aborted: {failed} of {total_jobs} jobs failed, exceeding compute.max_failed_jobs = {max_failed_jobs:g}"
        f" (at most {failure_budget(max_failed_jobs, total_jobs):g} failed jobs)"
    )


def batch_status(counts: dict[str, int], cancelled: bool, aborted: bool = False) -> str:
    """Batch status from job counts: Pending, Running, Completed, Failed or Cancelled.

    A terminal status is reported only once every job is terminal, so a cancelled batch
    reads Running until its last running job has been killed. A batch aborted by its
    failure budget ends Failed.
    """
    total = sum(counts.values())
    if total and sum(counts.get(s, 0) for s in TERMINAL) == total:
        if aborted:
            return FAILED
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

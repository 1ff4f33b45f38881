"""Checking a batch config before it is sampled, and reading its retry policy; errors name the field."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx_common import limits
from lynx_common.conditions import parse_condition
from lynx_common.errors import ValidationError
from lynx_common.run_config import check_seed
from lynx_common.telemetry_storage import parquet_codec
from lynx_scheduler.policy import (
    DEFAULT_BACKOFF_MAX_S,
    DEFAULT_BACKOFF_S,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RUNNER_LOSSES,
    RetryPolicy,
)

DEFAULT_ENGINE = "basilisk"
MAX_RETRIES_CAP = 100
MAX_TIMEOUT_S = 7 * 24 * 3600.0
MAX_CHECK_HZ = 1000.0
MAX_BACKOFF_S = 24 * 3600.0
MAX_RUNNER_LOSSES_CAP = 100


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
    limits.check_count("dispersions", "dispersions", len(config.dispersions))
    limits.check_count("outputs", "results.outputs", len(config.results.outputs))
    limits.check_length("name_chars", "simulation.name", config.simulation.name)
    mc = config.monte_carlo
    if mc.HasField("seed"):
        check_seed(mc.seed)
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
    try:
        parquet_codec(tel.storage.compression)
    except ValueError as exc:
        raise ValidationError("telemetry.storage.compression", str(exc)) from None
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


def retry_policy(config: cfg.BatchConfig) -> RetryPolicy:
    """The retry policy a (validated) config asks for."""
    c = config.compute
    return RetryPolicy(
        max_retries=c.max_retries if c.HasField("max_retries") else DEFAULT_MAX_RETRIES,
        backoff_seconds=c.retry_backoff_seconds if c.HasField("retry_backoff_seconds") else DEFAULT_BACKOFF_S,
        backoff_max_seconds=(
            c.retry_backoff_max_seconds if c.HasField("retry_backoff_max_seconds") else DEFAULT_BACKOFF_MAX_S
        ),
        retry_early_termination=c.retry_early_termination,
        max_runner_losses=c.max_runner_losses if c.HasField("max_runner_losses") else DEFAULT_MAX_RUNNER_LOSSES,
        max_failed_jobs=c.max_failed_jobs if c.HasField("max_failed_jobs") else None,
    )


class Configs:
    """Each batch's parsed config and retry policy, cached (a batch's config never changes)."""

    def __init__(self, load) -> None:
        self._load = load  # async batch_id -> serialized BatchConfig
        self._configs: dict[str, cfg.BatchConfig] = {}
        self._policies: dict[str, RetryPolicy] = {}

    async def config(self, batch_id: str, blob: bytes | None = None) -> cfg.BatchConfig:
        """The batch's parsed config (`blob`, when given, saves a read)."""
        if batch_id not in self._configs:
            if blob is None:
                blob = await self._load(batch_id)
            self._configs[batch_id] = cfg.BatchConfig.FromString(blob)
        return self._configs[batch_id]

    async def policy(self, batch_id: str) -> RetryPolicy:
        """The batch's retry policy (compute.* with defaults)."""
        if batch_id not in self._policies:
            self._policies[batch_id] = retry_policy(await self.config(batch_id))
        return self._policies[batch_id]

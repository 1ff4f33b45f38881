"""Config checks before sampling: every bad field is named; defaults of a minimal config and of the retry policy."""

from __future__ import annotations

import math

import pytest

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx_common.errors import ValidationError
from lynx_scheduler import validation


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda c: setattr(c.compute, "job_timeout_seconds", math.inf), "compute.job_timeout_seconds"),
        (lambda c: setattr(c.early_termination, "check_frequency_hz", math.nan),
         "early_termination.check_frequency_hz"),
        (lambda c: setattr(c.telemetry, "sampling_rate_hz", -1.0), "telemetry.sampling_rate_hz"),
        (lambda c: setattr(c.monte_carlo, "seed", 2**53), "monte_carlo.seed"),
        (lambda c: setattr(c.monte_carlo, "runs", 0), "monte_carlo.runs"),
    ],
)
def test_out_of_range_fields_are_named(mutate, field):
    config = cfg.BatchConfig(monte_carlo=cfg.MonteCarlo(runs=3))
    mutate(config)
    with pytest.raises(ValidationError) as err:
        validation.validate_config(config)
    assert err.value.field == field


def test_defaults_of_a_minimal_config():
    plan = validation.validate_config(cfg.BatchConfig(monte_carlo=cfg.MonteCarlo(runs=3)), runs_override=7)
    assert (plan.runs, plan.engine, plan.simulation_type, plan.max_retries) == (7, "basilisk", "basilisk", 2)


def test_defaults_of_the_retry_policy():
    policy = validation.retry_policy(cfg.BatchConfig())
    assert (policy.max_retries, policy.backoff_seconds, policy.backoff_max_seconds, policy.max_runner_losses,
            policy.retry_early_termination, policy.max_failed_jobs) == (2, 1.0, 60.0, 3, False, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_failed_jobs", 0.0), ("max_failed_jobs", 2.5), ("max_failed_jobs", -1.0), ("max_failed_jobs", math.nan),
     ("retry_backoff_seconds", -1.0), ("retry_backoff_max_seconds", math.inf), ("max_runner_losses", 0)],
)
def test_bad_retry_fields_are_named(field, value):
    config = cfg.BatchConfig(monte_carlo=cfg.MonteCarlo(runs=3))
    setattr(config.compute, field, value)
    with pytest.raises(ValidationError) as err:
        validation.validate_config(config)
    assert err.value.field == f"compute.{field}"


@pytest.mark.parametrize("value", [1.0, 3.0, 0.25])
def test_good_failure_budgets_pass(value):
    config = cfg.BatchConfig(monte_carlo=cfg.MonteCarlo(runs=3))
    config.compute.max_failed_jobs = value
    validation.validate_config(config)

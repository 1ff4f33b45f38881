"""Scheduling rules: batch status, retry decisions, throughput and config checks."""

from __future__ import annotations

import math

import pytest

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx_common.errors import ValidationError
from lynx_scheduler import core


def counts(**kw: int) -> dict[str, int]:
    return {s: kw.get(s.lower(), 0) for s in core.JOB_STATUSES}


@pytest.mark.parametrize(
    ("c", "cancelled", "expected"),
    [
        (counts(pending=5), False, "Pending"),
        (counts(pending=4, running=1), False, "Running"),
        (counts(pending=2, completed=3), False, "Running"),  # between a finish and the next lease
        (counts(completed=4, failed=1), False, "Completed"),
        (counts(failed=5), False, "Failed"),
        (counts(cancelled=3, completed=2), True, "Cancelled"),
        (counts(cancelled=4, running=1), True, "Running"),  # the kill is on its way
    ],
)
def test_batch_status(c, cancelled, expected):
    assert core.batch_status(c, cancelled) == expected


@pytest.mark.parametrize(
    ("reason", "failures", "max_retries", "expected"),
    [
        ("exited", 1, 2, "Pending"),
        ("exited", 3, 2, "Failed"),
        ("timeout", 2, 2, "Pending"),
        ("early_termination", 1, 5, "Failed"),
        ("cancelled", 1, 5, "Cancelled"),
        ("exited", 1, 0, "Failed"),
    ],
)
def test_next_status_after_failure(reason, failures, max_retries, expected):
    policy = core.RetryPolicy(max_retries=max_retries)
    assert core.decide_after_failure(reason, failures, policy).status == expected


def test_throughput_and_estimate():
    assert core.throughput_per_minute(0, 100.0, 160.0) == 0.0
    assert core.throughput_per_minute(6, 100.0, 160.0) == 6.0
    assert core.estimate_minutes(12, 6.0) == 2.0
    assert core.estimate_minutes(12, 0.0) is None


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
        core.validate_config(config)
    assert err.value.field == field


def test_defaults_of_a_minimal_config():
    plan = core.validate_config(cfg.BatchConfig(monte_carlo=cfg.MonteCarlo(runs=3)), runs_override=7)
    assert (plan.runs, plan.engine, plan.simulation_type, plan.max_retries) == (7, "basilisk", "basilisk", 2)


@pytest.mark.parametrize(
    ("retry", "base", "cap", "expected"),
    [(1, 1.0, 60.0, 1.0), (2, 1.0, 60.0, 2.0), (3, 1.0, 60.0, 4.0), (7, 1.0, 60.0, 60.0), (3, 0.0, 60.0, 0.0),
     (500, 2.0, 30.0, 30.0)],
)
def test_backoff_doubles_up_to_its_cap(retry, base, cap, expected):
    policy = core.RetryPolicy(backoff_seconds=base, backoff_max_seconds=cap)
    assert core.backoff_delay(retry, policy) == expected


def test_defaults_of_the_retry_policy():
    policy = core.RetryPolicy.of(cfg.BatchConfig())
    assert (policy.max_retries, policy.backoff_seconds, policy.backoff_max_seconds, policy.max_runner_losses,
            policy.retry_early_termination, policy.max_failed_jobs) == (2, 1.0, 60.0, 3, False, None)


def test_failures_retry_with_backoff_until_the_limit():
    policy = core.RetryPolicy(max_retries=2, backoff_seconds=1.0)
    assert core.decide_after_failure("exited", 1, policy) == core.Decision("Pending", charge=True, delay=1.0)
    assert core.decide_after_failure("timeout", 2, policy) == core.Decision("Pending", charge=True, delay=2.0)
    assert core.decide_after_failure("launch_error", 3, policy).status == "Failed"
    assert core.decide_after_failure("early_termination", 1, policy).status == "Failed"
    retrying = core.RetryPolicy(retry_early_termination=True)
    assert core.decide_after_failure("early_termination", 1, retrying).status == "Pending"
    assert core.decide_after_failure("exited", 1, policy, stopping=True).status == "Failed"
    assert core.decide_after_failure("cancelled", 1, policy).status == "Cancelled"


def test_runner_losses_are_counted_apart_from_retries():
    policy = core.RetryPolicy(max_retries=0, max_runner_losses=3)
    assert core.decide_after_loss(1, policy) == core.Decision("Pending", lost=True)
    assert core.decide_after_loss(2, policy).status == "Pending"
    assert core.decide_after_loss(3, policy) == core.Decision("Failed", lost=True)
    assert core.decide_after_loss(1, policy, stopping=True).status == "Cancelled"


@pytest.mark.parametrize(
    ("failed", "budget", "total", "exceeded"),
    [(2, 2.0, 100, False), (3, 2.0, 100, True), (10, 0.1, 100, False), (11, 0.1, 100, True),
     (1, 0.5, 1, True), (1000, None, 1000, False)],
)
def test_failure_budget_is_a_count_or_a_fraction(failed, budget, total, exceeded):
    assert core.budget_exceeded(failed, budget, total) is exceeded


def test_aborted_batch_ends_failed_once_every_job_is_final():
    assert core.batch_status(counts(completed=3, failed=2, cancelled=5), False, aborted=True) == "Failed"
    assert core.batch_status(counts(failed=2, cancelled=5, running=1), False, aborted=True) == "Running"


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_failed_jobs", 0.0), ("max_failed_jobs", 2.5), ("max_failed_jobs", -1.0), ("max_failed_jobs", math.nan),
     ("retry_backoff_seconds", -1.0), ("retry_backoff_max_seconds", math.inf), ("max_runner_losses", 0)],
)
def test_bad_retry_fields_are_named(field, value):
    config = cfg.BatchConfig(monte_carlo=cfg.MonteCarlo(runs=3))
    setattr(config.compute, field, value)
    with pytest.raises(ValidationError) as err:
        core.validate_config(config)
    assert err.value.field == f"compute.{field}"


@pytest.mark.parametrize("value", [1.0, 3.0, 0.25])
def test_good_failure_budgets_pass(value):
    config = cfg.BatchConfig(monte_carlo=cfg.MonteCarlo(runs=3))
    config.compute.max_failed_jobs = value
    core.validate_config(config)

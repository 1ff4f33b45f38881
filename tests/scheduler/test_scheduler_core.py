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
    assert core.next_status_after_failure(reason, failures, max_retries) == expected


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

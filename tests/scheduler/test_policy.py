"""Pure scheduling decisions as tables: batch status, retry, backoff, runner losses, settling, budget, fairness."""

from __future__ import annotations

import pytest

from lynx_scheduler import policy


def counts(**kw: int) -> dict[str, int]:
    return {s: kw.get(s.lower(), 0) for s in policy.JOB_STATUSES}


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
    assert policy.batch_status(c, cancelled) == expected


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
    retry = policy.RetryPolicy(max_retries=max_retries)
    assert policy.decide_after_failure(reason, failures, retry).status == expected


def test_throughput_and_estimate():
    assert policy.throughput_per_minute(0, 100.0, 160.0) == 0.0
    assert policy.throughput_per_minute(6, 100.0, 160.0) == 6.0
    assert policy.estimate_minutes(12, 6.0) == 2.0
    assert policy.estimate_minutes(12, 0.0) is None


@pytest.mark.parametrize(
    ("retry", "base", "cap", "expected"),
    [(1, 1.0, 60.0, 1.0), (2, 1.0, 60.0, 2.0), (3, 1.0, 60.0, 4.0), (7, 1.0, 60.0, 60.0), (3, 0.0, 60.0, 0.0),
     (500, 2.0, 30.0, 30.0)],
)
def test_backoff_doubles_up_to_its_cap(retry, base, cap, expected):
    retries = policy.RetryPolicy(backoff_seconds=base, backoff_max_seconds=cap)
    assert policy.backoff_delay(retry, retries) == expected


def test_failures_retry_with_backoff_until_the_limit():
    retry = policy.RetryPolicy(max_retries=2, backoff_seconds=1.0)
    assert policy.decide_after_failure("exited", 1, retry) == policy.Decision("Pending", charge=True, delay=1.0)
    assert policy.decide_after_failure("timeout", 2, retry) == policy.Decision("Pending", charge=True, delay=2.0)
    assert policy.decide_after_failure("launch_error", 3, retry).status == "Failed"
    assert policy.decide_after_failure("early_termination", 1, retry).status == "Failed"
    retrying = policy.RetryPolicy(retry_early_termination=True)
    assert policy.decide_after_failure("early_termination", 1, retrying).status == "Pending"
    assert policy.decide_after_failure("exited", 1, retry, stopping=True).status == "Failed"
    assert policy.decide_after_failure("cancelled", 1, retry).status == "Cancelled"


def test_runner_losses_are_counted_apart_from_retries():
    retry = policy.RetryPolicy(max_retries=0, max_runner_losses=3)
    assert policy.decide_after_loss(1, retry) == policy.Decision("Pending", lost=True)
    assert policy.decide_after_loss(2, retry).status == "Pending"
    assert policy.decide_after_loss(3, retry) == policy.Decision("Failed", lost=True)
    assert policy.decide_after_loss(1, retry, stopping=True).status == "Cancelled"


@pytest.mark.parametrize(
    ("failed", "budget", "total", "exceeded"),
    [(2, 2.0, 100, False), (3, 2.0, 100, True), (10, 0.1, 100, False), (11, 0.1, 100, True),
     (1, 0.5, 1, True), (1000, None, 1000, False)],
)
def test_failure_budget_is_a_count_or_a_fraction(failed, budget, total, exceeded):
    assert policy.budget_exceeded(failed, budget, total) is exceeded


def test_aborted_batch_ends_failed_once_every_job_is_final():
    assert policy.batch_status(counts(completed=3, failed=2, cancelled=5), False, aborted=True) == "Failed"
    assert policy.batch_status(counts(failed=2, cancelled=5, running=1), False, aborted=True) == "Running"


P = policy.RetryPolicy(max_retries=1, backoff_seconds=2.0, max_runner_losses=2)


@pytest.mark.parametrize(
    ("kind", "outcome", "reason", "failures", "losses", "stopping", "status", "recorded", "written"),
    [
        # the runner's own report
        ("finished", "completed", "exited", 0, 0, False, "Completed", "exited", None),
        ("finished", "failed", "exited", 0, 0, False, "Pending", "exited", None),
        ("finished", "failed", "timeout", 1, 0, False, "Failed", "timeout", None),
        ("finished", "failed", "exited", 0, 0, True, "Failed", "exited", None),
        ("finished", "cancelled", "cancelled", 0, 0, False, "Cancelled", "cancelled", None),
        ("finished", "failed", "early_termination", 0, 0, False, "Failed", "early_termination", None),
        # the scheduler ends it: lost with the runner, released, cancelled
        ("lost", "runner_lost", "", 5, 0, False, "Pending", "runner_lost", None),
        ("lost", "runner_lost", "", 0, 1, False, "Failed", "runner_lost", "runner_lost"),
        ("lost", "runner_lost", "", 0, 0, True, "Cancelled", "runner_lost", "cancelled"),
        ("released", "released", "released", 1, 1, False, "Pending", "released", None),
        ("released", "released", "released", 0, 0, True, "Cancelled", "released", "cancelled"),
        ("cancelled", "cancelled", "cancelled", 0, 0, True, "Cancelled", "cancelled", "cancelled"),
    ],
)
def test_settle(kind, outcome, reason, failures, losses, stopping, status, recorded, written):
    s = policy.settle(kind, outcome, reason, failures, losses, P, stopping)
    assert (s.decision.status, s.reason) == (status, recorded)
    assert (s.scheduler_result[0] if s.scheduler_result else None) == written


@pytest.mark.parametrize(
    ("kind", "failures", "losses", "charge", "lost", "delay"),
    [("finished", 0, 0, True, False, 2.0), ("lost", 0, 0, False, True, 0.0), ("released", 0, 0, False, False, 0.0)],
)
def test_settle_charges_only_failures_to_the_retry_budget(kind, failures, losses, charge, lost, delay):
    d = policy.settle(kind, "failed", "exited", failures, losses, P, False).decision
    assert (d.status, d.charge, d.lost, d.delay) == ("Pending", charge, lost, delay)


@pytest.mark.parametrize(
    ("reported_before", "kind", "verdict"),
    [(True, "finished", "duplicate"), (True, "released", "duplicate"), (False, "finished", "stale"),
     (True, "lost", "stale")],
)
def test_a_report_of_an_ended_attempt(reported_before, kind, verdict):
    assert policy.report_verdict(reported_before, kind) == verdict


def _cand(name: str, running: int, room: float, age: float, jobs: int, runners: list[str]) -> policy.Candidate:
    return policy.Candidate(name, running, room, age, [f"{name}{i}" for i in range(jobs)], runners)


@pytest.mark.parametrize(
    ("candidates", "free", "expected"),
    [
        # the batch with fewer running jobs first, then alternating
        ([_cand("a", 2, 10, 1, 3, ["r"]), _cand("b", 0, 10, 2, 3, ["r"])], {"r": 4},
         [("r", "b0"), ("r", "b1"), ("r", "a0"), ("r", "b2")]),
        # ties go to the older batch; max_parallel_jobs (room) caps a batch
        ([_cand("a", 0, 1, 1, 3, ["r"]), _cand("b", 0, 10, 2, 3, ["r"])], {"r": 3},
         [("r", "a0"), ("r", "b0"), ("r", "b1")]),
        # a runner only takes batches it serves; the runner with the most free slots first
        ([_cand("a", 0, 10, 1, 3, ["x", "y"]), _cand("b", 0, 10, 2, 1, ["y"])], {"x": 2, "y": 1},
         [("x", "a0"), ("y", "b0"), ("x", "a1")]),
        # no free slot, no plan
        ([_cand("a", 0, 10, 1, 3, ["r"])], {"r": 0}, []),
    ],
)
def test_fair_plan(candidates, free, expected):
    plan = policy.fair_plan(candidates, free, key=lambda r: r)
    assert [(runner, job) for runner, _, job in plan] == expected


def test_the_words_the_store_keeps_are_the_enum_names():
    """The store keeps statuses, reasons and outcomes as words; the wire carries the enums, mapped
    through lynx_common.names: a word that is no enum's name would travel as UNSPECIFIED."""
    from lynx_common.names import ATTEMPT_OUTCOME, JOB_STATUS, TERMINATION_REASON

    assert policy.JOB_STATUSES == JOB_STATUS.names
    assert {policy.RUNNER_LOST, policy.RELEASED, policy.CANCELLED_KIND, "early_termination"} <= set(
        TERMINATION_REASON.names
    )
    assert {"running", "completed", "failed", policy.RUNNER_LOST, policy.RELEASED, policy.CANCELLED_KIND} == set(
        ATTEMPT_OUTCOME.names
    )


def test_a_runner_that_starts_the_job_at_once_is_preferred_over_one_that_would_queue_it():
    # x has 2 leases of room, but only by leasing ahead (no free slot); y has 1 free slot
    plan = policy.fair_plan([_cand("a", 0, 10, 1, 3, ["x", "y"])], {"x": 2, "y": 1}, key=lambda r: r,
                            starts={"x": 0, "y": 1})
    assert [(runner, job) for runner, _, job in plan] == [("y", "a0"), ("x", "a1"), ("x", "a2")]


def test_a_lease_beyond_a_batchs_cap_is_held_ahead_only_behind_its_own_jobs():
    from lynx_scheduler.sessions import Lease, RunnerSession

    session = RunnerSession("r", frozenset({"basilisk"}), frozenset({"t"}), capacity=2, heartbeat_interval=1.0)
    session.lease_ahead = 1
    session.leases = {"b1": Lease(1, "B", 1)}
    assert not session.queues_only_behind("B")  # a free slot: the job would start at once
    session.leases["b2"] = Lease(1, "B", 1)
    assert session.queues_only_behind("B") and not session.queues_only_behind("A")
    session.leases["b2"] = Lease(1, "A", 1)
    assert not session.queues_only_behind("B")  # it could start when A's job exits, raising B's count
    session.leases["b2"] = Lease(1, "B", 1)
    session.lease_ahead = 0
    assert not session.queues_only_behind("B")  # the runner does not lease ahead

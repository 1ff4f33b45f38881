"""Runners that die, freeze or are cancelled under them: every job ends with exactly one result."""

from __future__ import annotations

import signal
import time

from fault_harness import (
    alive,
    batch_config,
    failures_by_reason,
    jobs_by_status,
    kill_host_process,
    outcome,
    reason,
    wait_for,
)

from lynx.scheduler.v1 import scheduler_service_pb2 as pb


def test_killed_runner_jobs_finish_on_another_runner(stack):
    stack.start_runner("doomed", FAULT_SLEEP=30)
    batch_id = stack.submit(3)
    job_id, pid, _ = wait_for(lambda: stack.marks.started(), 20, "the doomed runner's scenario")[0]
    stack.start_runner("survivor", FAULT_SLEEP=0.3)
    stack.kill("doomed")  # the host dies: the runner and its scenario
    kill_host_process(pid)
    b = stack.wait_finished(batch_id, timeout=30)
    assert b.status == pb.BATCH_STATUS_COMPLETED
    jobs = stack.assert_one_result_each(batch_id)
    assert all(j.status == pb.JOB_STATUS_COMPLETED for j in jobs)
    lost = stack.job(job_id)
    assert lost.runner_losses == 1
    assert [(a.attempt, a.runner_id, outcome(a)) for a in lost.attempt_history] == [
        (1, "doomed", "runner_lost"), (2, "survivor", "completed")]
    assert lost.result.attempt == 2 and lost.result.metadata["runner_id"] == "survivor"


def test_frozen_runner_late_result_is_ignored_and_its_process_killed(stack):
    stack.start_runner("frozen", FAULT_SLEEP=8)
    batch_id = stack.submit(1)
    job_id, pid, _ = wait_for(lambda: stack.marks.started(), 20, "the frozen runner's scenario")[0]
    stack.start_runner("awake", FAULT_SLEEP=0.3)
    stack.signal("frozen", signal.SIGSTOP)
    # Frozen past its lease TTL (3 x 0.5 s): the job runs again on the other runner.
    b = stack.wait_finished(batch_id, timeout=15)
    assert b.status == pb.BATCH_STATUS_COMPLETED
    assert alive(pid), "the frozen runner's scenario is still running, unsupervised"
    stack.signal("frozen", signal.SIGCONT)
    woke = time.monotonic()
    wait_for(lambda: not alive(pid), 5, "the stale scenario to be killed once its runner woke")
    assert time.monotonic() - woke < 5
    assert not stack.marks.done(job_id, pid)
    job = wait_for(lambda: (j := stack.job(job_id)).attempt_history[0].ignored_reports and j, 5,
                   "the stale attempt's report to be recorded as ignored")
    assert [(a.attempt, a.runner_id, outcome(a)) for a in job.attempt_history] == [
        (1, "frozen", "runner_lost"), (2, "awake", "completed")]
    assert job.attempt_history[0].ignored_reports == 1
    assert job.status == pb.JOB_STATUS_COMPLETED and job.result.attempt == 2
    stack.assert_one_result_each(batch_id)
    assert len(stack.marks.started(job_id)) == 2


def test_cancel_kills_every_running_scenario_within_two_seconds(stack):
    stack.start_runner("busy", slots=3, FAULT_SLEEP=60)
    batch_id = stack.submit(5)
    wait_for(lambda: len(stack.marks.running()) == 3, 20, "three scenarios running")
    pids = stack.marks.running()
    started = time.monotonic()
    reply = stack.stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch_id), timeout=5)
    assert reply.cancelled_jobs == 5
    wait_for(lambda: not any(alive(p) for p in pids), 2.0, "every scenario of the batch to die", interval=0.05)
    b = wait_for(lambda: (b := stack.batch(batch_id)).status == pb.BATCH_STATUS_CANCELLED and b,
                 2.0 - (time.monotonic() - started) + 0.5, "the batch to read Cancelled", interval=0.05)
    assert jobs_by_status(b)["Cancelled"] == 5
    jobs = stack.assert_one_result_each(batch_id)
    assert {reason(j.result.termination_reason) for j in jobs} == {"cancelled"}
    assert not stack.marks.running()


def test_failing_job_exhausts_retries_with_backoff(stack):
    stack.start_runner("flaky", types=("flaky",), FAULT_SLEEP=0, FAULT_EXIT=3)
    config = batch_config("flaky", max_retries=2, retry_backoff_seconds=0.5, retry_backoff_max_seconds=10)
    batch_id = stack.submit(1, config)
    b = stack.wait_finished(batch_id, timeout=20)
    assert b.status == pb.BATCH_STATUS_FAILED
    assert failures_by_reason(b) == {"exited": 1}
    (job,) = stack.assert_one_result_each(batch_id)
    job = stack.job(job.job_id)
    history = job.attempt_history
    assert [(a.attempt, outcome(a), a.exit_code) for a in history] == [(1, "failed", 3), (2, "failed", 3),
                                                                      (3, "failed", 3)]
    gaps = [history[i + 1].started_at.ToMilliseconds() - history[i].ended_at.ToMilliseconds() for i in (0, 1)]
    assert gaps[0] >= 500 and gaps[1] >= 1000, gaps  # 0.5 s, then doubled
    assert job.status == pb.JOB_STATUS_FAILED and job.result.exit_code == 3


def test_two_batches_share_a_runner_fairly_and_unserved_batches_say_why(stack):
    stack.start_runner("shared", slots=2, FAULT_SLEEP=0.2)
    first = stack.submit(6, name="first")
    second = stack.submit(6, name="second")
    orphan = stack.submit(1, batch_config("nobody"), name="orphan")
    for batch_id in (first, second):
        assert stack.wait_finished(batch_id, timeout=30).status == pb.BATCH_STATUS_COMPLETED
        stack.assert_one_result_each(batch_id)
    starts = {b: sorted(stack.job(j.job_id).attempt_history[0].started_at.ToMilliseconds()
                        for j in stack.jobs(b)) for b in (first, second)}
    # Oldest-first would lease all of `first` before any of `second`; fair share interleaves them.
    assert starts[second][0] < starts[first][-1]
    assert starts[first][0] < starts[second][-1]
    waiting = stack.batch(orphan)
    assert waiting.status == pb.BATCH_STATUS_PENDING
    assert waiting.status_message == "no connected runner serves simulation type 'nobody' (engine 'basilisk')"

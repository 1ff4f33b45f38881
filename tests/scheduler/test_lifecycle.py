"""Batch lifecycle over the real gRPC contract: failure budget, rerun-failed, drain and release,
reconnects within the lease TTL, estimates."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from scheduler_harness import batch, failures, job_counts, submit, tutorial_config

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.names import ATTEMPT_OUTCOME
from lynx_common.status import field_violations


async def _job(stub, job_id: str) -> pb.Job:
    return (await stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=5)).job


async def _settled(stub, job_id: str, status: int) -> pb.Job:
    for _ in range(50):
        job = await _job(stub, job_id)
        if job.status == status:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {pb.JobStatus.Name(status)}: {job}")


async def test_exceeding_the_failure_budget_aborts_the_batch(scheduler):
    host = scheduler.runner("r1", slots=3)
    batch_id = await submit(scheduler, tutorial_config(max_retries=0, max_failed_jobs=1, max_parallel_jobs=0), runs=6)
    leases = [await host.next_lease() for _ in range(3)]
    host.finish(leases[0], success=False)
    leases.append(await host.next_lease())  # 1 failure is within budget: the freed slot is used
    assert (await batch(scheduler, batch_id)).status == pb.BATCH_STATUS_RUNNING
    host.finish(leases[1], success=False)
    killed = {(await host.next_cancel()).job_id, (await host.next_cancel()).job_id}
    assert killed == {leases[2].job_id, leases[3].job_id}  # the running jobs are killed...
    assert await host.no_lease(0.3)  # ...and nothing more is leased
    for lease in leases[2:]:
        host.finish(lease, success=False, reason="cancelled")
        await _settled(scheduler, lease.job_id, pb.JOB_STATUS_CANCELLED)
    b = await batch(scheduler, batch_id)
    assert b.status == pb.BATCH_STATUS_FAILED
    assert job_counts(b) == {"Pending": 0, "Running": 0, "Completed": 0, "Failed": 2, "Cancelled": 4}
    assert b.status_message.startswith("aborted: 2 of 6 jobs failed, exceeding compute.max_failed_jobs = 1")
    assert failures(b) == {"exited": 2}


async def test_rerun_failed_requeues_failed_jobs_with_the_same_parameters(scheduler):
    host = scheduler.runner("r1")
    batch_id = await submit(scheduler, tutorial_config(max_retries=0), runs=2)
    first = await host.next_lease()
    host.finish(first, success=False, reason="early_termination")
    second = await host.next_lease()
    with pytest.raises(grpc.aio.AioRpcError) as err:  # still running
        await scheduler.RerunFailed(pb.RerunFailedRequest(batch_id=batch_id), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    host.finish(second, success=True)
    await _settled(scheduler, second.job_id, pb.JOB_STATUS_COMPLETED)
    b = await batch(scheduler, batch_id)
    assert (b.status, b.early_terminated_jobs, failures(b)) == (
        pb.BATCH_STATUS_COMPLETED, 1, {"early_termination": 1})
    reply = await scheduler.RerunFailed(pb.RerunFailedRequest(batch_id=batch_id), timeout=5)
    assert reply.requeued_jobs == 1
    assert reply.batch.status in (pb.BATCH_STATUS_RUNNING, pb.BATCH_STATUS_PENDING)
    again = await host.next_lease()
    assert (again.job_id, again.attempt) == (first.job_id, 2)
    assert json.loads(again.run_config_json) == json.loads(first.run_config_json)
    host.finish(again, success=True)
    await _settled(scheduler, first.job_id, pb.JOB_STATUS_COMPLETED)
    b = await batch(scheduler, batch_id)
    assert (b.status, b.early_terminated_jobs, job_counts(b)["Completed"]) == (pb.BATCH_STATUS_COMPLETED, 0, 2)
    for bad, code in (("", grpc.StatusCode.INVALID_ARGUMENT), ("nope", grpc.StatusCode.NOT_FOUND)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await scheduler.RerunFailed(pb.RerunFailedRequest(batch_id=bad), timeout=5)
        assert err.value.code() == code


async def test_a_draining_runner_gets_no_leases_and_released_jobs_run_elsewhere_uncharged(scheduler):
    leaving = scheduler.runner("leaving", slots=2)
    batch_id = await submit(scheduler, tutorial_config(max_retries=0, max_parallel_jobs=0), runs=3)
    lease = await leaving.next_lease()
    other = await leaving.next_lease()
    runner = (await scheduler.GetRunner(pb.GetRunnerRequest(runner_id="leaving"), timeout=5)).runner
    assert not runner.draining and sorted(runner.job_ids) == sorted([lease.job_id, other.job_id])
    leaving.send(draining=pb.Draining(grace_seconds=1))
    leaving.finish(other, success=True)
    assert (await leaving.next_ack()).accepted
    assert await leaving.no_lease(0.5)  # a slot is free, but it is draining
    runner = (await scheduler.GetRunner(pb.GetRunnerRequest(runner_id="leaving"), timeout=5)).runner
    assert runner.draining and list(runner.job_ids) == [lease.job_id]  # what the runners page shows
    leaving.send(job_released=pb.JobReleased(job_id=lease.job_id, attempt=lease.attempt, reason="runner draining"))
    ack = await leaving.next_ack()
    assert (ack.job_id, ack.accepted) == (lease.job_id, True)
    staying = scheduler.runner("staying", slots=2)
    leased = {(x.job_id, x.attempt) for x in (await staying.next_lease(), await staying.next_lease())}
    assert (lease.job_id, 2) in leased  # max_retries=0, yet the released job runs again
    job = await _job(scheduler, lease.job_id)
    assert [(a.attempt, a.runner_id, ATTEMPT_OUTCOME.name(a.outcome)) for a in job.attempt_history] == [
        (1, "leaving", "released"), (2, "staying", "running")]
    assert job.runner_losses == 0
    listed = {j.job_id: j for j in (await scheduler.ListJobs(pb.ListJobsRequest(batch_id=batch_id), timeout=5)).jobs}
    assert listed[lease.job_id].attempt_history == job.attempt_history


async def test_a_runner_that_reconnects_within_its_ttl_keeps_its_jobs(scheduler):
    host = scheduler.runner("flaky-link")
    await submit(scheduler, tutorial_config(), runs=2)
    lease = await host.next_lease()
    await host.reconnect(running=[lease])
    watcher = scheduler.runner("watcher")
    other = await watcher.next_lease()
    assert other.job_id != lease.job_id
    assert await watcher.no_lease(2.0)  # past the 1.5 s TTL: the job stayed with its runner
    host.finish(lease, success=True)
    assert (await host.next_ack()).accepted
    job = await _settled(scheduler, lease.job_id, pb.JOB_STATUS_COMPLETED)
    assert job.attempts == 1 and job.runner_losses == 0


async def test_jobs_a_runner_lists_but_does_not_hold_are_cancelled(scheduler):
    host = scheduler.runner("r1")
    await submit(scheduler, tutorial_config(), runs=1)
    lease = await host.next_lease()
    ghost = pb.JobLease(job_id=lease.job_id, attempt=lease.attempt + 3)
    await host.reconnect(running=[lease, ghost])
    cancel = await host.next_cancel()
    assert cancel.job_id == lease.job_id and "attempt 4" in cancel.reason
    host.send(heartbeat=pb.Heartbeat(running_jobs=[pb.RunningJob(job_id="stranger", attempt=1)]))
    assert (await host.next_cancel()).job_id == "stranger"


async def test_estimate_appears_once_throughput_is_measured(scheduler):
    host = scheduler.runner("r1")
    batch_id = await submit(scheduler, tutorial_config(), runs=3)
    lease = await host.next_lease()
    assert not (await batch(scheduler, batch_id)).HasField("estimated_completion_time_mins")
    await asyncio.sleep(0.2)
    host.finish(lease, success=True)
    await _settled(scheduler, lease.job_id, pb.JOB_STATUS_COMPLETED)
    b = await batch(scheduler, batch_id)
    assert b.throughput_jobs_per_minute > 0
    assert b.estimated_completion_time_mins == pytest.approx(2 / b.throughput_jobs_per_minute, abs=0.02)


async def test_a_runner_that_comes_back_without_its_job_loses_it(scheduler):
    host = scheduler.runner("restarted")
    await submit(scheduler, tutorial_config(), runs=1)
    lease = await host.next_lease()
    host.running.clear()  # a new process with the same id: it runs nothing
    await host.reconnect(running=[])
    again = await host.next_lease()  # judged at its first heartbeat, not after a TTL
    assert (again.job_id, again.attempt) == (lease.job_id, 2)
    job = await _job(scheduler, lease.job_id)
    assert job.runner_losses == 1
    outcomes = [(a.attempt, ATTEMPT_OUTCOME.name(a.outcome)) for a in job.attempt_history]
    assert outcomes == [(1, "runner_lost"), (2, "running")]


async def test_a_retry_waits_for_its_backoff(scheduler):
    host = scheduler.runner("r1")
    await submit(scheduler, tutorial_config(max_retries=1, retry_backoff_seconds=30), runs=1)
    lease = await host.next_lease()
    host.finish(lease, success=False)
    job = await _settled(scheduler, lease.job_id, pb.JOB_STATUS_PENDING)
    ended = job.attempt_history[0].ended_at.ToMilliseconds()
    assert job.not_before.ToMilliseconds() - ended == pytest.approx(30_000, abs=50)
    assert await host.no_lease(0.5)  # a free runner, yet the retry waits


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_failed_jobs", 2.5), ("retry_backoff_seconds", -1.0), ("max_runner_losses", 0)],
)
async def test_bad_retry_settings_are_invalid_argument_naming_the_field(scheduler, field, value):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await submit(scheduler, tutorial_config(**{field: value}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"compute.{field} ")
    assert field_violations(err.value)[0][0] == f"compute.{field}"

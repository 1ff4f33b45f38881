"""Contract tests of SchedulerService: real sampler and scheduler servers, runners speaking the Connect protocol."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from scheduler_harness import TUTORIAL, batch, job_counts, submit, tutorial_config

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.status import field_violations
from lynx_sampler.seeds import run_seed


async def test_runner_never_gets_more_than_its_slots(scheduler):
    host = scheduler.runner("r1", slots=2)
    await submit(scheduler, tutorial_config(max_parallel_jobs=0))
    first = [await host.next_lease(), await host.next_lease()]
    assert await host.no_lease()
    host.finish(first[0], success=True)
    third = await host.next_lease()
    assert third.job_id not in {lease.job_id for lease in first}
    run_config = json.loads(third.run_config_json)
    assert run_config["metadata"]["simulation_name"] == "Basic Orbit Tutorial"
    assert run_config["metadata"]["batch_seed"] == 42
    assert run_config["metadata"]["seed"] == run_seed(42, run_config["run_id"])
    job = (await scheduler.GetJob(pb.GetJobRequest(job_id=third.job_id), timeout=5)).job
    assert job.seed == run_config["metadata"]["seed"]
    assert [p.name for p in job.parameters] == list(run_config["parameters"])
    assert [p.value.number for p in job.parameters] == list(run_config["parameters"].values())
    assert list(run_config["parameters"]) == list(TUTORIAL["config"]["dispersions"])


async def test_a_runner_that_leases_ahead_holds_one_lease_more_than_its_slots(scheduler):
    host = scheduler.runner("r1", slots=2)
    host.lease_ahead = 1  # said in its heartbeats
    await asyncio.sleep(0.4)
    await submit(scheduler, tutorial_config(max_parallel_jobs=0), runs=6)
    held = [await host.next_lease() for _ in range(3)]
    assert await host.no_lease()
    host.finish(held.pop(0), success=True)
    held.append(await host.next_lease())  # the queue is refilled as soon as a job is reported
    host.lease_ahead = 0  # its jobs got long: back to its slots
    await asyncio.sleep(0.4)
    host.finish(held.pop(0), success=True)
    assert await host.no_lease()  # 2 leases held, 2 slots


async def test_a_batch_at_its_max_parallel_jobs_is_leased_ahead_only_behind_its_own_jobs(scheduler):
    host = scheduler.runner("r1", slots=2)
    host.lease_ahead = 1
    await asyncio.sleep(0.4)
    batch_id = await submit(scheduler, tutorial_config(max_parallel_jobs=2), runs=6)
    held = [await host.next_lease() for _ in range(3)]  # 2 run; the third can start only when one of them exits
    assert await host.no_lease()
    other = scheduler.runner("r2", slots=2)
    assert await other.no_lease()  # the batch is at its cap: nothing may start elsewhere
    host.finish(held.pop(0), success=True)
    held.append(await host.next_lease())
    assert await other.no_lease()
    assert job_counts(await batch(scheduler, batch_id))["Completed"] == 1


async def test_batch_max_parallel_jobs_caps_leases(scheduler):
    host = scheduler.runner("r1", slots=4)
    batch_id = await submit(scheduler, tutorial_config(max_parallel_jobs=1), runs=3)
    lease = await host.next_lease()
    assert await host.no_lease()
    host.finish(lease, success=True)
    await host.next_lease()
    b = await batch(scheduler, batch_id)
    assert job_counts(b)["Completed"] == 1 and job_counts(b)["Running"] == 1
    assert b.status == pb.BATCH_STATUS_RUNNING


async def test_failed_job_is_retried_up_to_the_limit(scheduler):
    host = scheduler.runner("r1")
    batch_id = await submit(scheduler, tutorial_config(max_retries=1), runs=1)
    first = await host.next_lease()
    assert first.attempt == 1
    host.finish(first, success=False)
    second = await host.next_lease()
    assert (second.job_id, second.attempt) == (first.job_id, 2)
    host.finish(second, success=False)
    assert await host.no_lease()
    b = await batch(scheduler, batch_id)
    assert b.status == pb.BATCH_STATUS_FAILED
    job = (await scheduler.GetJob(pb.GetJobRequest(job_id=first.job_id), timeout=5)).job
    assert job.status == pb.JOB_STATUS_FAILED and job.attempts == 2
    assert job.result.error_message == "boom" and job.result.metadata["runner_id"] == "r1"


async def test_early_termination_is_not_retried(scheduler):
    host = scheduler.runner("r1")
    await submit(scheduler, tutorial_config(max_retries=3), runs=1)
    lease = await host.next_lease()
    host.finish(lease, success=False, reason="early_termination")
    assert await host.no_lease()
    job = (await scheduler.GetJob(pb.GetJobRequest(job_id=lease.job_id), timeout=5)).job
    assert job.status == pb.JOB_STATUS_FAILED and job.attempts == 1


async def test_report_of_a_wrong_attempt_is_ignored(scheduler):
    host = scheduler.runner("r1")
    await submit(scheduler, tutorial_config(), runs=1)
    lease = await host.next_lease()
    host.finish(lease, success=True, attempt=lease.attempt + 7)
    await asyncio.sleep(0.3)
    job = (await scheduler.GetJob(pb.GetJobRequest(job_id=lease.job_id), timeout=5)).job
    assert job.status == pb.JOB_STATUS_RUNNING
    host.finish(lease, success=True)
    await asyncio.sleep(0.3)
    job = (await scheduler.GetJob(pb.GetJobRequest(job_id=lease.job_id), timeout=5)).job
    assert job.status == pb.JOB_STATUS_COMPLETED


async def test_lost_runner_jobs_run_elsewhere_without_charging_retries(scheduler):
    doomed = scheduler.runner("doomed")
    await submit(scheduler, tutorial_config(max_retries=0), runs=1)
    lease = await doomed.next_lease()
    await doomed.close()
    survivor = scheduler.runner("survivor")
    again = await survivor.next_lease()
    assert again.job_id == lease.job_id and again.attempt == 2
    survivor.finish(again, success=True)
    await asyncio.sleep(0.3)
    job = (await scheduler.GetJob(pb.GetJobRequest(job_id=lease.job_id), timeout=5)).job
    assert job.status == pb.JOB_STATUS_COMPLETED
    runners = {r.runner_id: r for r in (await scheduler.ListRunners(pb.ListRunnersRequest(), timeout=5)).runners}
    assert runners["doomed"].status == pb.RUNNER_STATUS_OFFLINE
    assert runners["survivor"].status == pb.RUNNER_STATUS_ONLINE


async def test_jobs_go_only_to_runners_with_the_simulation_type(scheduler):
    other = scheduler.runner("px4", types=("px4_sitl",))
    config = tutorial_config()
    await submit(scheduler, config, runs=1)
    assert await other.no_lease()
    orbit = scheduler.runner("orbit", types=("basilisk", "orbit"))
    await orbit.next_lease()


async def test_invalid_submission_names_the_field(scheduler):
    config = tutorial_config()
    config.dispersions[1].distribution.max = -1.0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await submit(scheduler, config)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "dispersions.eccentricity.distribution.max must be greater than min" in err.value.details()
    assert field_violations(err.value)[0][0] == "dispersions.eccentricity.distribution.max"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await submit(scheduler, tutorial_config(job_timeout_seconds=-1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value)[0][0] == "compute.job_timeout_seconds"
    listed = await scheduler.ListBatches(pb.ListBatchesRequest(), timeout=5)
    assert len(listed.batches) == 0


async def test_submit_with_sampler_down_is_unavailable_and_stores_nothing(scheduler):
    await scheduler.sampler_server.stop(0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await submit(scheduler, tutorial_config())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len((await scheduler.ListBatches(pb.ListBatchesRequest(), timeout=5)).batches) == 0


async def test_seedless_batch_records_the_seed_it_used(scheduler):
    config = tutorial_config()
    config.monte_carlo.ClearField("seed")
    batch_id = await submit(scheduler, config)
    b = await batch(scheduler, batch_id)
    assert b.seed > 0 and b.config.monte_carlo.seed == b.seed


async def test_silent_runner_loses_its_lease(scheduler):
    silent = scheduler.runner("silent")
    await submit(scheduler, tutorial_config(), runs=1)
    lease = await silent.next_lease()
    silent.beats.cancel()  # alive but silent: no heartbeats past the TTL (3 x 0.5 s)
    other = scheduler.runner("other")
    again = await other.next_lease(timeout=6.0)
    assert again.job_id == lease.job_id and again.attempt == 2


async def test_cancelling_a_finished_batch_keeps_its_outcome(scheduler):
    host = scheduler.runner("r1")
    batch_id = await submit(scheduler, tutorial_config(), runs=1)
    host.finish(await host.next_lease(), success=True)
    await asyncio.sleep(0.3)
    reply = await scheduler.CancelBatch(pb.CancelBatchRequest(batch_id=batch_id), timeout=5)
    assert reply.cancelled_jobs == 0
    assert reply.batch.status == pb.BATCH_STATUS_COMPLETED
    assert (await batch(scheduler, batch_id)).status == pb.BATCH_STATUS_COMPLETED


async def test_unknown_ids_are_not_found(scheduler):
    for call, request in (
        (scheduler.GetBatch, pb.GetBatchRequest(batch_id="nope")),
        (scheduler.GetJob, pb.GetJobRequest(job_id="nope")),
        (scheduler.GetRunner, pb.GetRunnerRequest(runner_id="nope")),
        (scheduler.CancelBatch, pb.CancelBatchRequest(batch_id="nope")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(request, timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

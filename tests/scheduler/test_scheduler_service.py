"""Contract tests of SchedulerService: real sampler and scheduler servers, runners speaking the Connect protocol."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_common.seeds import run_seed
from lynx_common.server import GrpcServer, client_channel
from lynx_gateway.convert import config_from_json
from lynx_sampler.server import build_server as build_sampler
from lynx_scheduler.dispatch import Dispatcher
from lynx_scheduler.server import SchedulerServicer
from lynx_scheduler.store import Store

TUTORIAL = json.loads((Path(__file__).parents[1] / "e2e" / "tutorial_body.json").read_text())


def tutorial_config(**compute) -> cfg.BatchConfig:
    config = config_from_json(TUTORIAL["config"])
    for key, value in compute.items():
        setattr(config.compute, key, value)
    return config


class FakeRunnerHost:
    """A test runner: speaks the real Connect protocol and lets the test decide each job's outcome."""

    def __init__(self, stub, runner_id: str, slots: int, types=("basilisk",)):
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.leases: asyncio.Queue = asyncio.Queue()
        self.register = pb.RegisterRunner(
            runner_id=runner_id, name=runner_id, engines=["basilisk"], heartbeat_interval_secs=0.5,
            capabilities=pb.RunnerCapabilities(max_concurrent_jobs=slots, supported_simulation_types=list(types)),
        )
        self.call = stub.Connect(self._requests())
        self.reader = asyncio.create_task(self._read())
        self.beats = asyncio.create_task(self._beat())

    async def _beat(self):
        while True:
            await asyncio.sleep(0.25)
            self.outbox.put_nowait(pb.ConnectRequest(heartbeat=pb.Heartbeat()))

    async def _requests(self):
        yield pb.ConnectRequest(register=self.register)
        while True:
            yield await self.outbox.get()

    async def _read(self):
        async for message in self.call:
            if message.WhichOneof("message") == "lease":
                await self.leases.put(message.lease)

    async def next_lease(self, timeout: float = 5.0) -> pb.JobLease:
        return await asyncio.wait_for(self.leases.get(), timeout)

    async def no_lease(self, wait: float = 0.7) -> bool:
        await asyncio.sleep(wait)
        return self.leases.empty()

    def finish(self, lease: pb.JobLease, success: bool, reason: str = "exited", attempt: int | None = None):
        result = pb.JobResult(success=success, termination_reason=reason, exit_code=0 if success else 1)
        if not success:
            result.error_message = "boom"
        self.outbox.put_nowait(pb.ConnectRequest(job_finished=pb.JobFinished(
            job_id=lease.job_id, attempt=attempt or lease.attempt, result=result)))

    async def close(self):
        self.call.cancel()
        self.reader.cancel()
        self.beats.cancel()
        await asyncio.gather(self.reader, self.beats, return_exceptions=True)


@pytest.fixture
async def scheduler(tmp_path):
    sampler = build_sampler()
    await sampler.start()
    store = await Store.open(tmp_path / "scheduler.db")
    dispatcher = Dispatcher(store)
    dispatcher.start()
    sampler_channel = client_channel(sampler.address)
    servicer = SchedulerServicer(store, dispatcher, sampler_grpc.SamplerServiceStub(sampler_channel))
    server = GrpcServer(lambda s: pb_grpc.add_SchedulerServiceServicer_to_server(servicer, s),
                        ["lynx.scheduler.v1.SchedulerService"])
    await server.start()
    channel = client_channel(server.address)
    stub = pb_grpc.SchedulerServiceStub(channel)
    runners: list[FakeRunnerHost] = []

    def runner(runner_id: str, slots: int = 1, types=("basilisk",)) -> FakeRunnerHost:
        host = FakeRunnerHost(stub, runner_id, slots, types)
        runners.append(host)
        return host

    stub.runner = runner
    stub.sampler_server = sampler
    yield stub
    for host in runners:
        await host.close()
    await channel.close()
    await server.stop(0)
    await dispatcher.stop()
    await sampler_channel.close()
    await sampler.stop(0)
    await store.close()


async def submit(stub, config: cfg.BatchConfig, runs: int = 5) -> str:
    reply = await stub.SubmitBatch(pb.SubmitBatchRequest(name="t", runs_override=runs, config=config), timeout=10)
    assert reply.total_jobs == runs
    return reply.batch_id


async def batch(stub, batch_id: str) -> pb.Batch:
    return (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), timeout=5)).batch


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
    assert list(run_config["parameters"]) == list(TUTORIAL["config"]["dispersions"])


async def test_batch_max_parallel_jobs_caps_leases(scheduler):
    host = scheduler.runner("r1", slots=4)
    batch_id = await submit(scheduler, tutorial_config(max_parallel_jobs=1), runs=3)
    lease = await host.next_lease()
    assert await host.no_lease()
    host.finish(lease, success=True)
    await host.next_lease()
    b = await batch(scheduler, batch_id)
    assert b.jobs_by_status["Completed"] == 1 and b.jobs_by_status["Running"] == 1
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
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await submit(scheduler, tutorial_config(job_timeout_seconds=-1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "compute.job_timeout_seconds" in err.value.details()
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

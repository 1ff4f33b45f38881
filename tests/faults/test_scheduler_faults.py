"""The scheduler dies mid-batch, and reports arrive twice or from an old attempt."""

from __future__ import annotations

import asyncio
import time

from fault_harness import kill_host_process, outcome, wait_for

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_common.server import client_channel


def test_scheduler_killed_mid_batch_and_restarted_loses_and_repeats_nothing(stack):
    stack.start_runner("r1", FAULT_SLEEP=1.5)
    stack.start_runner("r2", FAULT_SLEEP=1.5)
    batch_id = stack.submit(6)
    wait_for(lambda: len(stack.marks.running()) == 2, 20, "both runners running a job")
    time.sleep(0.5)
    stack.kill("scheduler")
    time.sleep(1.5)  # jobs finish while the scheduler is down: their reports wait for it
    stack.start_scheduler()
    b = stack.wait_finished(batch_id, timeout=40)
    assert b.status == pb.BATCH_STATUS_COMPLETED
    jobs = stack.assert_one_result_each(batch_id)
    assert all(j.status == pb.JOB_STATUS_COMPLETED for j in jobs)
    # Nothing ran twice: one attempt and one scenario process per job.
    assert [j.attempts for j in jobs] == [1] * 6
    assert sorted(job for job, _, _ in stack.marks.started()) == sorted(j.job_id for j in jobs)
    for j in jobs:
        (attempt,) = stack.job(j.job_id).attempt_history
        assert outcome(attempt) == "completed" and attempt.ignored_reports == 0


def test_after_a_restart_jobs_whose_runner_never_returns_run_elsewhere(stack):
    stack.start_runner("gone", FAULT_SLEEP=30)
    batch_id = stack.submit(1)
    job_id, pid, _ = wait_for(lambda: stack.marks.started(), 20, "the scenario to start")[0]
    stack.kill("scheduler")
    stack.kill("gone")  # its host dies while the scheduler is down
    kill_host_process(pid)
    stack.start_scheduler()
    restarted = time.time()
    stack.start_runner("heir", FAULT_SLEEP=0.2)
    assert stack.wait_finished(batch_id, timeout=30).status == pb.BATCH_STATUS_COMPLETED
    (job,) = stack.assert_one_result_each(batch_id)
    job = stack.job(job.job_id)
    assert [(a.attempt, a.runner_id, outcome(a)) for a in job.attempt_history] == [
        (1, "gone", "runner_lost"), (2, "heir", "completed")]
    assert job.runner_losses == 1
    # The job waited out the restart grace window (max(TTL, 5 s)) for its runner to come back.
    assert job.attempt_history[1].started_at.ToMilliseconds() / 1000 - restarted > 4.0


class FakeRunner:
    """Speaks the Connect protocol to the real scheduler process; the test decides every report."""

    def __init__(self, stub, runner_id: str, running: tuple[pb.RunningJob, ...] = ()):
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.leases: asyncio.Queue = asyncio.Queue()
        self.acks: asyncio.Queue = asyncio.Queue()
        self.register = pb.RegisterRunner(
            runner_id=runner_id, engines=["basilisk"], heartbeat_interval_secs=0.5, running_jobs=running,
            capabilities=pb.RunnerCapabilities(max_concurrent_jobs=1, supported_simulation_types=["faults"]),
        )
        self.call = stub.Connect(self._requests())
        self.reader = asyncio.create_task(self._read())
        self.beats = asyncio.create_task(self._beat())

    async def _requests(self):
        yield pb.ConnectRequest(register=self.register)
        while True:
            yield await self.outbox.get()

    async def _beat(self):
        while True:
            await asyncio.sleep(0.25)
            self.outbox.put_nowait(pb.ConnectRequest(heartbeat=pb.Heartbeat()))

    async def _read(self):
        async for message in self.call:
            kind = message.WhichOneof("message")
            if kind == "lease":
                await self.leases.put(message.lease)
            elif kind == "ack":
                await self.acks.put(message.ack)

    def finish(self, job_id: str, attempt: int) -> None:
        result = pb.JobResult(success=True, termination_reason=pb.TERMINATION_REASON_EXITED, exit_code=0)
        self.outbox.put_nowait(pb.ConnectRequest(job_finished=pb.JobFinished(
            job_id=job_id, attempt=attempt, result=result)))

    async def ack(self) -> pb.ReportAck:
        return await asyncio.wait_for(self.acks.get(), 5)

    async def close(self):
        self.call.cancel()
        self.beats.cancel()
        self.reader.cancel()
        await asyncio.gather(self.reader, self.beats, return_exceptions=True)


async def _job(stub, job_id: str) -> pb.Job:
    return (await stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=5)).job


async def test_duplicate_and_stale_reports_count_once(stack):
    async with client_channel(stack.addr) as channel:
        stub = pb_grpc.SchedulerServiceStub(channel)
        first = FakeRunner(stub, "first")
        batch_id = stack.submit(1)
        lease = await asyncio.wait_for(first.leases.get(), 10)
        # The same report twice: accepted once, acknowledged twice, the second recorded as ignored.
        first.finish(lease.job_id, 1)
        first.finish(lease.job_id, 1)
        assert [(a.attempt, a.accepted) for a in (await first.ack(), await first.ack())] == [(1, True), (1, True)]
        job = await _job(stub, lease.job_id)
        assert job.status == pb.JOB_STATUS_COMPLETED and job.attempts == 1
        assert job.attempt_history[0].ignored_reports == 1
        results = (await stub.GetBatchResults(pb.GetBatchResultsRequest(batch_id=batch_id), timeout=5)).results
        assert len(results) == 1

        # Two attempts: the first runner goes silent past its TTL, the job runs again elsewhere,
        # then the first runner's late report arrives and is refused.
        batch_id = stack.submit(1)
        stale = await asyncio.wait_for(first.leases.get(), 10)
        first.beats.cancel()
        second = FakeRunner(stub, "second")
        again = await asyncio.wait_for(second.leases.get(), 10)
        assert (again.job_id, again.attempt) == (stale.job_id, 2)
        second.finish(again.job_id, 2)
        assert (await second.ack()).accepted
        await first.close()
        late = FakeRunner(stub, "first", running=(pb.RunningJob(job_id=stale.job_id, attempt=1),))
        late.finish(stale.job_id, 1)
        ack = await late.ack()
        assert (ack.job_id, ack.attempt, ack.accepted) == (stale.job_id, 1, False)
        job = await _job(stub, stale.job_id)
        assert job.status == pb.JOB_STATUS_COMPLETED and job.result.attempt == 2
        assert job.result.metadata["runner_id"] == "second"
        assert [(a.attempt, outcome(a), a.ignored_reports) for a in job.attempt_history] == [
            (1, "runner_lost", 1), (2, "completed", 0)]
        results = (await stub.GetBatchResults(pb.GetBatchResultsRequest(batch_id=batch_id), timeout=5)).results
        assert [r.attempt for r in results] == [2]
        for runner in (second, late):
            await runner.close()

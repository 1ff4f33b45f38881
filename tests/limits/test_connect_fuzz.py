"""Malformed and out-of-order messages on the runner-facing Connect stream: no crash, no job lost."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from scheduler_harness import batch, job_counts, submit, tutorial_config

from lynx.scheduler.v1 import scheduler_service_pb2 as pb


async def _raw(stub, messages: list[pb.ConnectRequest], read: int = 1, hold: float = 0.3) -> tuple[list, object]:
    """Send `messages` on a fresh Connect stream, read up to `read` answers; (answers, status code or None)."""
    async def requests():
        for m in messages:
            yield m
        await asyncio.sleep(hold)

    call = stub.Connect(requests(), timeout=5)
    answers = []
    try:
        async for answer in call:
            answers.append(answer)
            if len(answers) >= read:
                break
    except grpc.aio.AioRpcError as exc:
        return answers, exc.code()
    finally:
        call.cancel()
    return answers, None


def _register(runner_id: str, **fields) -> pb.ConnectRequest:
    return pb.ConnectRequest(register=pb.RegisterRunner(
        runner_id=runner_id, name=runner_id, engines=["basilisk"], heartbeat_interval_secs=0.5,
        capabilities=pb.RunnerCapabilities(max_concurrent_jobs=1, supported_simulation_types=["basilisk"]), **fields))


async def test_junk_on_the_connect_stream_is_refused_or_ignored_and_no_job_is_lost(scheduler):
    batch_id = await submit(scheduler, tutorial_config(), runs=2)
    heartbeat = pb.ConnectRequest(heartbeat=pb.Heartbeat())
    finished = pb.ConnectRequest(job_finished=pb.JobFinished(job_id="no-such-job", attempt=1,
                                                             result=pb.JobResult(success=True)))

    # A report or heartbeat before register: a clear status, nothing leased.
    _, code = await _raw(scheduler, [heartbeat])
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    _, code = await _raw(scheduler, [finished])
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    # A register without an id, or with a huge one: INVALID_ARGUMENT.
    _, code = await _raw(scheduler, [_register("")])
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    _, code = await _raw(scheduler, [_register("x" * 100_000)])
    assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)
    # Abrupt close right after register, with a job leased: the job goes back, it is not lost.
    answers, _ = await _raw(scheduler, [_register("abrupt")], read=2, hold=1.0)
    # Registered, then double register, reports for unknown jobs, wrong attempts and huge fields.
    junk = [_register("fuzzer"), _register("fuzzer"), finished,
            pb.ConnectRequest(job_finished=pb.JobFinished(job_id="", attempt=-5)),
            pb.ConnectRequest(job_released=pb.JobReleased(job_id="no-such-job", attempt=99)),
            pb.ConnectRequest(heartbeat=pb.Heartbeat(running_jobs=[pb.RunningJob(job_id="ghost", attempt=7)] * 1000)),
            pb.ConnectRequest(job_finished=pb.JobFinished(job_id="z" * 1_000_000, attempt=1,
                                                          result=pb.JobResult(error_message="e" * 1_000_000))),
            pb.ConnectRequest()]
    await _raw(scheduler, junk, read=5, hold=0.5)

    # The scheduler still serves, and a real runner finishes every job of the batch.
    worker = scheduler.runner("worker")
    for _ in range(2):
        lease = await worker.next_lease(timeout=15)
        worker.finish(lease, success=True)
    for _ in range(100):
        counts = job_counts(await batch(scheduler, batch_id))
        if counts["Completed"] == 2:
            break
        await asyncio.sleep(0.1)
    assert counts["Completed"] == 2, counts
    assert len(answers) >= 1  # the abrupt runner was registered before it vanished


@pytest.mark.parametrize("attempt", [-1, 2, 2**31 - 1])
async def test_a_report_for_the_wrong_attempt_changes_nothing(scheduler, attempt):
    batch_id = await submit(scheduler, tutorial_config(), runs=1)
    worker = scheduler.runner("worker")
    lease = await worker.next_lease(timeout=15)
    worker.finish(lease, success=False, attempt=attempt)  # not its lease: ignored
    await asyncio.sleep(0.5)
    assert job_counts(await batch(scheduler, batch_id))["Running"] == 1
    worker.finish(lease, success=True)
    for _ in range(50):
        if job_counts(await batch(scheduler, batch_id))["Completed"] == 1:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the job never completed")

"""lynx-runner on SIGTERM: drains (no new leases, running jobs get a grace period, the rest are
handed back uncharged); a second signal stops at once. A real lynx-runner process against an
in-process scheduler and sampler."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_common.names import ATTEMPT_OUTCOME
from lynx_common.server import GrpcServer, client_channel
from lynx_runner.main import drain_grace
from lynx_sampler.server import build_server as build_sampler
from lynx_scheduler.dispatch import Dispatcher
from lynx_scheduler.server import SchedulerServicer
from lynx_scheduler.store import Store

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "tests" / "faults" / "scenarios" / "sleeper.py"
RUNNER = Path(sys.executable).parent / "lynx-runner"


@pytest.fixture
async def stub(tmp_path):
    """A scheduler and a sampler gRPC server in this process."""
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
    stub.address = server.address
    yield stub
    await channel.close()
    await server.stop(0)
    await dispatcher.stop()
    await sampler_channel.close()
    await sampler.stop(0)
    await store.close()


def _runner(tmp_path: Path, address: str, sleep: float, grace: float,
            lease_ahead_below: float = 0) -> tuple[subprocess.Popen, Path]:
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    config = tmp_path / "runner.yaml"
    config.write_text(yaml.safe_dump({
        "engines": ["basilisk"], "capabilities": ["drain"], "working_directory": str(REPO),
        "output_root": str(tmp_path / "runs"), "python_executable": sys.executable,
        "basilisk_entrypoint": str(SCENARIO), "max_concurrent_jobs": 2, "heartbeat_interval_secs": 0.5,
        "warm_start": False, "lease_ahead_below_seconds": lease_ahead_below,
    }))
    env = {**os.environ, "LYNX_SCHEDULER_ADDR": address, "LYNX_TELEMETRY_ADDR": "127.0.0.1:9",
           "FAULT_PID_DIR": str(marks), "FAULT_SLEEP": str(sleep)}
    log = (tmp_path / "runner.log").open("wb")
    proc = subprocess.Popen([str(RUNNER), "--config", str(config), "--runner-id", "drainer",
                             "--drain-grace", str(grace)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, marks


async def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def _submit(stub, runs: int) -> str:
    config = cfg.BatchConfig(
        simulation=cfg.Simulation(name="drain", engine="basilisk", type="drain"),
        monte_carlo=cfg.MonteCarlo(runs=runs, seed=3, sampling_method="random"),
        dispersions=[cfg.Dispersion(name="x", distribution=cfg.Distribution(type="uniform", min=0.0, max=1.0))],
    )
    return (await stub.SubmitBatch(pb.SubmitBatchRequest(name="drain", config=config), timeout=10)).batch_id


async def _jobs(stub, batch_id: str) -> list[pb.Job]:
    listed = (await stub.ListJobs(pb.ListJobsRequest(batch_id=batch_id), timeout=5)).jobs
    return [(await stub.GetJob(pb.GetJobRequest(job_id=j.job_id), timeout=5)).job for j in listed]


def _pids(marks: Path) -> list[int]:
    return [int(p.name.split(".")[1]) for p in marks.glob("*.pid")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


async def _running(stub, batch_id: str, n: int) -> list[pb.Job]:
    async def check():
        jobs = await _jobs(stub, batch_id)
        return [j for j in jobs if j.status == pb.JOB_STATUS_RUNNING] if sum(
            j.status == pb.JOB_STATUS_RUNNING for j in jobs) == n else None
    return await _until(check, 20, f"{n} running jobs")


async def test_sigterm_drains_then_hands_back_what_is_left(stub, tmp_path):
    proc, marks = _runner(tmp_path, stub.address, sleep=30, grace=1)
    try:
        batch_id = await _submit(stub, 3)
        running = await _running(stub, batch_id, 2)
        await _until(lambda: asyncio.sleep(0, len(_pids(marks)) == 2), 10, "two scenarios started")
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)
        assert code == 0
        assert not any(_alive(p) for p in _pids(marks))
        jobs = {j.job_id: j for j in await _jobs(stub, batch_id)}
        for job in running:
            job = jobs[job.job_id]
            assert job.status == pb.JOB_STATUS_PENDING  # handed back, waiting for another runner
            assert [(a.attempt, ATTEMPT_OUTCOME.name(a.outcome)) for a in job.attempt_history] == [(1, "released")]
            assert job.runner_losses == 0
        assert sum(j.attempts for j in jobs.values()) == 2  # the third job was never leased to it
    finally:
        proc.kill()


async def test_sigterm_lets_short_jobs_finish(stub, tmp_path):
    proc, _marks = _runner(tmp_path, stub.address, sleep=1.0, grace=10)
    try:
        batch_id = await _submit(stub, 3)
        running = await _running(stub, batch_id, 2)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert await asyncio.to_thread(proc.wait, 10) == 0
        assert time.monotonic() - started < 5  # it left as soon as its jobs were done, not after the grace
        jobs = {j.job_id: j for j in await _jobs(stub, batch_id)}
        assert all(jobs[j.job_id].status == pb.JOB_STATUS_COMPLETED for j in running)
        assert [j.status for j in jobs.values()].count(pb.JOB_STATUS_PENDING) == 1
    finally:
        proc.kill()


async def test_a_draining_runner_hands_back_its_queued_lease_at_once(stub, tmp_path):
    proc, marks = _runner(tmp_path, stub.address, sleep=2.0, grace=15, lease_ahead_below=10)
    try:
        batch_id = await _submit(stub, 8)
        # after its first two 2-second jobs it leases ahead: two jobs run, a third is queued
        await _until(lambda: asyncio.sleep(0, len(_pids(marks)) == 4), 20, "the second pair of jobs started")
        await _running(stub, batch_id, 3)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0
        jobs = await _jobs(stub, batch_id)
        ran = {p.name.split(".")[0] for p in marks.glob("*.pid")}
        released = [j for j in jobs if [ATTEMPT_OUTCOME.name(a.outcome) for a in j.attempt_history] == ["released"]]
        assert len(released) == 1 and released[0].job_id not in ran  # the queued one, handed back unrun
        assert sum(j.status == pb.JOB_STATUS_COMPLETED for j in jobs) == 4  # the running ones finished
    finally:
        proc.kill()


async def test_a_second_signal_stops_at_once_and_the_jobs_count_as_lost(stub, tmp_path):
    proc, marks = _runner(tmp_path, stub.address, sleep=30, grace=30)
    try:
        batch_id = await _submit(stub, 1)
        (job,) = await _running(stub, batch_id, 1)
        await _until(lambda: asyncio.sleep(0, bool(_pids(marks))), 10, "the scenario to start")
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 3) == 0
        assert not any(_alive(p) for p in _pids(marks))

        async def requeued():
            j = (await stub.GetJob(pb.GetJobRequest(job_id=job.job_id), timeout=5)).job
            return j if j.status == pb.JOB_STATUS_PENDING else None
        lost = await _until(requeued, 5, "the job to be requeued after the lease TTL")
        assert lost.runner_losses == 1 and ATTEMPT_OUTCOME.name(lost.attempt_history[0].outcome) == "runner_lost"
    finally:
        proc.kill()


def test_drain_grace_comes_from_the_flag_then_the_environment():
    assert drain_grace(None, {}) == 30.0
    assert drain_grace(None, {"LYNX_RUNNER_DRAIN_GRACE_SECONDS": "7.5"}) == 7.5
    assert drain_grace(2.0, {"LYNX_RUNNER_DRAIN_GRACE_SECONDS": "7.5"}) == 2.0
    for bad_env in ("soon", "-1", "inf"):
        with pytest.raises(ValueError, match="LYNX_RUNNER_DRAIN_GRACE_SECONDS"):
            drain_grace(None, {"LYNX_RUNNER_DRAIN_GRACE_SECONDS": bad_env})
    with pytest.raises(ValueError, match="--drain-grace"):
        drain_grace(-3.0, {})

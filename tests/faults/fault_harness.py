"""Fault-injection harness: real sampler, scheduler and lynx-runner processes on 127.0.0.1.

Imported by name (conftest.py holds the fixtures).

Runners heartbeat every 0.5 s, so a lease TTL is 1.5 s. Every scenario process records its pid
in `marks` (see scenarios/sleeper.py), so tests can check what ran and what still runs.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_cli import stack as lynx_stack
from lynx_common.names import ATTEMPT_OUTCOME, JOB_STATUS, TERMINATION_REASON
from lynx_gateway.convert import config_from_json

REPO = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).parent / "scenarios" / "sleeper.py"
HEARTBEAT_S = 0.5
TERMINAL_BATCH = (pb.BATCH_STATUS_COMPLETED, pb.BATCH_STATUS_FAILED, pb.BATCH_STATUS_CANCELLED)
FINAL_JOB = (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED)


def batch_config(sim_type: str = "faults", **compute):
    """A small batch config: one uniform parameter, the given compute.* fields."""
    config = config_from_json({
        "simulation": {"name": "faults", "version": "1", "engine": "basilisk", "type": sim_type},
        "monte_carlo": {"runs": 1, "seed": 7, "sampling_method": "random"},
        "dispersions": {"x": {"distribution": {"type": "uniform", "min": 0.0, "max": 1.0}}},
    })
    for key, value in compute.items():
        setattr(config.compute, key, value)
    return config


def outcome(attempt: pb.Attempt) -> str:
    """An attempt's outcome as the REST API names it ("runner_lost")."""
    return ATTEMPT_OUTCOME.name(attempt.outcome)


def reason(value: int) -> str:
    """A termination reason as the REST API names it ("cancelled")."""
    return TERMINATION_REASON.name(value)


def jobs_by_status(batch: pb.Batch) -> dict[str, int]:
    """{"Cancelled": 5, ...} from the batch's status counts."""
    return {JOB_STATUS.name(c.status): c.count for c in batch.jobs_by_status}


def failures_by_reason(batch: pb.Batch) -> dict[str, int]:
    """{"exited": 1, ...} from the batch's failure counts."""
    return {reason(c.reason): c.count for c in batch.failures_by_reason}


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll until predicate() is truthy; returns its value or fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def kill_host_process(pid: int) -> None:
    """SIGKILL a scenario as its host dies; it may already be gone, taken by its runner's death signal."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Marks:
    """The pid files the scenarios wrote."""

    root: Path

    def started(self, job_id: str = "") -> list[tuple[str, int, str]]:
        """(job_id, pid, runner) of every scenario process that started."""
        out = []
        for f in sorted(self.root.glob(f"{job_id}*.pid")):
            job, pid = f.name[:-4].rsplit(".", 1)
            out.append((job, int(pid), f.read_text()))
        return out

    def done(self, job_id: str, pid: int) -> bool:
        return (self.root / f"{job_id}.{pid}.done").exists()

    def running(self) -> list[int]:
        return [pid for _, pid, _ in self.started() if alive(pid)]


class Stack:
    """One scheduler (restartable) and any number of runners, all real processes (lynx_cli.stack)."""

    def __init__(self, root: Path, sampler_addr: str) -> None:
        self.root = root
        self.marks = Marks(root / "marks")
        self.marks.root.mkdir()
        self.procs = lynx_stack.Stack(root / "data", lynx_stack.Ports(0, 0, 0, 0), services=("scheduler",),
                                 sampler_addr=sampler_addr, cwd=REPO, ready_timeout=30)
        self.addr = self.procs.ports.scheduler_addr
        self.channel = grpc.insecure_channel(self.addr)
        self.stub = pb_grpc.SchedulerServiceStub(self.channel)

    def start_scheduler(self) -> None:
        """Start the scheduler, or start it again (same port and data) after kill("scheduler")."""
        self.procs.restart("scheduler")

    def start_runner(self, runner_id: str, slots: int = 1, types=("faults",), wait: bool = True, **env) -> None:
        """A lynx-runner whose scenario sleeps FAULT_SLEEP s and exits FAULT_EXIT (from **env)."""
        config = self.root / f"{runner_id}.yaml"
        config.write_text(yaml.safe_dump({
            "engines": ["basilisk"], "capabilities": list(types), "working_directory": str(REPO),
            "output_root": str(self.root / "runs" / runner_id), "python_executable": sys.executable,
            "basilisk_entrypoint": str(SCENARIO), "max_concurrent_jobs": slots,
            "heartbeat_interval_secs": HEARTBEAT_S, "warm_start": False,
        }))
        self.procs.add_runner(lynx_stack.Runner(runner_id, config=config, args=["--drain-grace", "1"], env={
            "FAULT_PID_DIR": str(self.marks.root), "FAULT_RUNNER": runner_id,
            **{k: str(v) for k, v in env.items()},
        }), wait=wait)

    def signal(self, name: str, sig: int) -> None:
        self.procs.signal(name, sig)

    def kill(self, name: str) -> None:
        self.procs.kill(name)

    def submit(self, runs: int, config=None, name: str = "faults") -> str:
        reply = self.stub.SubmitBatch(pb.SubmitBatchRequest(name=name, runs_override=runs,
                                                            config=config or batch_config()), timeout=30)
        return reply.batch_id

    def batch(self, batch_id: str) -> pb.Batch:
        return self.stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), timeout=5).batch

    def jobs(self, batch_id: str) -> list[pb.Job]:
        return list(self.stub.ListJobs(pb.ListJobsRequest(batch_id=batch_id), timeout=5).jobs)

    def job(self, job_id: str) -> pb.Job:
        return self.stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=5).job

    def wait_finished(self, batch_id: str, timeout: float = 30) -> pb.Batch:
        def finished():
            try:
                b = self.batch(batch_id)
            except grpc.RpcError:
                return None
            return b if b.status in TERMINAL_BATCH else None
        return wait_for(finished, timeout, f"batch {batch_id} to finish", interval=0.2)

    def assert_one_result_each(self, batch_id: str) -> list[pb.Job]:
        """Every job is final and has exactly one result; the results name distinct jobs."""
        jobs = self.jobs(batch_id)
        assert all(j.status in FINAL_JOB for j in jobs), [pb.JobStatus.Name(j.status) for j in jobs]
        results = self.stub.GetBatchResults(pb.GetBatchResultsRequest(batch_id=batch_id), timeout=5).results
        assert sorted(r.job_id for r in results) == sorted(j.job_id for j in jobs)
        for j in jobs:
            assert j.result.job_id == j.job_id and j.result.attempt == j.attempts
        return jobs

    def close(self) -> None:
        self.channel.close()
        self.procs.stop(grace=0)
        for pid in self.marks.running():  # a SIGKILLed runner's orphans
            kill_host_process(pid)


@pytest.fixture(scope="session")
def sampler_addr(tmp_path_factory):
    """One sampler process for the tests of a folder (it keeps no state)."""
    sampler = lynx_stack.Stack(tmp_path_factory.mktemp("sampler"), lynx_stack.Ports(0, 0, 0, 0),
                              services=("sampler",), cwd=REPO, ready_timeout=30)
    with sampler:
        yield sampler.ports.sampler_addr


@pytest.fixture
def stack(tmp_path, sampler_addr):
    """A scheduler process on a fresh data directory; tests add runners."""
    s = Stack(tmp_path, sampler_addr)
    s.start_scheduler()
    yield s
    s.close()

"""A runner under abuse, as real processes: 50,000 output files, a huge output, and SIGKILL (no orphans)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fault_harness import REPO, Stack, alive, wait_for

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_cli import stack as lynx_stack
from lynx_runner.orphans import JobRecords, _stat, session_members

pytestmark = pytest.mark.e2e
SCENARIO = Path(__file__).parent / "scenarios" / "abuse.py"




def start_runner(stack: Stack, runner_id: str, warm: bool = False, **env) -> None:
    config = stack.root / f"{runner_id}.yaml"
    config.write_text(yaml.safe_dump({
        "engines": ["basilisk"], "capabilities": ["faults"], "working_directory": str(REPO),
        "output_root": str(stack.root / "runs" / runner_id), "python_executable": sys.executable,
        "basilisk_entrypoint": str(SCENARIO), "max_concurrent_jobs": 1, "heartbeat_interval_secs": 0.5,
        "warm_start": warm, "preload": [],
    }))
    stack.procs.add_runner(lynx_stack.Runner(runner_id, config=config, env={k: str(v) for k, v in env.items()}))


def only_job(stack: Stack, batch_id: str) -> pb.Job:
    batch = stack.wait_finished(batch_id, timeout=120)
    assert batch.status == pb.BATCH_STATUS_COMPLETED, batch
    [job] = stack.jobs(batch_id)
    assert job.attempts == 1 and job.runner_losses == 0  # the runner was never declared lost
    return job


def test_fifty_thousand_output_files_give_a_bounded_report(stack):
    start_runner(stack, "files-runner", ABUSE_MODE="files", ABUSE_FILES=50_000)
    job = only_job(stack, stack.submit(1))
    assert len(job.result.files) == 1000 and len(job.result.output_files) == 1000
    assert job.result.files[0].relative_path == "f000000.txt"
    assert any("50000 output files" in note and "LYNX_LIMIT_OUTPUT_FILES" in note for note in job.result.notes)
    assert stack.batch(stack.submit(1)).total_jobs == 1  # the runner takes the next job: not stuck


def test_hashing_a_huge_output_keeps_heartbeats_flowing(stack):
    """2 GiB (sparse) takes seconds to hash, past the 1.5 s lease TTL; the issue's 8 GiB was run by hand."""
    start_runner(stack, "sparse-runner", ABUSE_MODE="sparse", ABUSE_BYTES=2 * 2**30)
    job = only_job(stack, stack.submit(1))
    [huge] = job.result.files
    assert huge.size_bytes == 2 * 2**30 and len(huge.sha256) == 64
    [runner] = stack.stub.ListRunners(pb.ListRunnersRequest(), timeout=5).runners
    assert runner.status == pb.RUNNER_STATUS_ONLINE


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_sigkilled_runner_leaves_no_scenario_or_grandchild(stack, warm):
    marks = stack.root / "abuse-marks"
    marks.mkdir()
    start_runner(stack, "doomed", warm=warm, ABUSE_MODE="family", ABUSE_MARKS=marks)
    stack.submit(1)
    pids = wait_for(lambda: len(list(marks.glob("*.pid"))) == 2 and [int(p.stem) for p in marks.glob("*.pid")],
                    60, "the scenario and its grandchild")
    assert all(alive(p) for p in pids)
    stack.kill("doomed")  # SIGKILL
    killed = time.monotonic()
    wait_for(lambda: not any(alive(p) for p in pids), 5, "no scenario process left (checked in /proc)")
    assert time.monotonic() - killed < 5


def test_a_restarted_runner_kills_only_what_its_records_name(tmp_path):
    records = JobRecords(tmp_path / "records")
    left = subprocess.Popen(["sh", "-c", "sleep 60 & exec sleep 60"], start_new_session=True)
    grandchild = wait_for(lambda: [p for p in session_members(left.pid) if p != left.pid], 5, "the grandchild")[0]
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        records.record("job-left", left.pid)
        records.record("job-stranger", stranger.pid)
        stale = records.folder / "job-stranger.json"  # the pid was reused by a process started later
        stale.write_text(stale.read_text().replace(f'"start": {_stat(stranger.pid)[1]}', '"start": 1'))
        assert records.kill_leftovers() == 1
        assert left.wait(5) == -signal.SIGKILL
        time.sleep(0.2)
        wait_for(lambda: not alive(grandchild), 5, "the grandchild to die")
        assert stranger.poll() is None  # not ours: left alone
        assert not list(records.folder.glob("*.json"))
    finally:
        for proc in (left, stranger):
            proc.kill()
            proc.wait()

"""RunnerAgent against a scripted scheduler: reports are kept until acknowledged and resent after a
reconnect, registrations list running attempts, and a newer attempt of a job replaces the old one."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import yaml

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_common.names import TERMINATION_REASON
from lynx_common.server import GrpcServer
from lynx_runner.agent import RunnerAgent
from lynx_runner.config import load_config

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "tests" / "faults" / "scenarios" / "sleeper.py"


class Stream:
    """One Connect stream as the scripted scheduler sees it."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.outbox: asyncio.Queue = asyncio.Queue()

    async def expect(self, kind: str, timeout: float = 10.0):
        """The next message of this kind (heartbeats and other kinds are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.inbox.get()
                if message.WhichOneof("message") == kind:
                    return getattr(message, kind)

    async def nothing_but_heartbeats(self, wait: float) -> bool:
        await asyncio.sleep(wait)
        while not self.inbox.empty():
            if self.inbox.get_nowait().WhichOneof("message") != "heartbeat":
                return False
        return True

    def send(self, **message) -> None:
        self.outbox.put_nowait(pb.ConnectResponse(**message))

    def close(self) -> None:
        self.outbox.put_nowait(None)


class ScriptedScheduler(pb_grpc.SchedulerServiceServicer):
    """Hands each new Connect stream to the test, which plays the scheduler's side."""

    def __init__(self) -> None:
        self.streams: asyncio.Queue[Stream] = asyncio.Queue()

    async def Connect(self, request_iterator, context):
        stream = Stream()
        await self.streams.put(stream)

        async def read():
            async for message in request_iterator:
                await stream.inbox.put(message)

        reader = asyncio.create_task(read())
        try:
            while (message := await stream.outbox.get()) is not None:
                yield message
        finally:
            reader.cancel()

    async def next_stream(self) -> Stream:
        return await asyncio.wait_for(self.streams.get(), 10)


@pytest.fixture
async def scripted(tmp_path, monkeypatch):
    """(scheduler, agent) with the agent running; the scenario sleeps FAULT_SLEEP (set per test)."""
    scheduler = ScriptedScheduler()
    server = GrpcServer(lambda s: pb_grpc.add_SchedulerServiceServicer_to_server(scheduler, s),
                        ["lynx.scheduler.v1.SchedulerService"])
    await server.start()
    (tmp_path / "marks").mkdir()
    monkeypatch.setenv("FAULT_PID_DIR", str(tmp_path / "marks"))
    config_file = tmp_path / "runner.yaml"
    config_file.write_text(yaml.safe_dump({
        "engines": ["basilisk"], "capabilities": ["t"], "working_directory": str(REPO),
        "output_root": str(tmp_path / "runs"), "python_executable": sys.executable,
        "basilisk_entrypoint": str(SCENARIO), "max_concurrent_jobs": 2, "heartbeat_interval_secs": 0.2,
        "warm_start": False, "lease_ahead_below_seconds": 1.0,
    }))
    agent = RunnerAgent(load_config(config_file, env={}), "agent-1", "agent-1", server.address, "127.0.0.1:9")
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    yield scheduler, agent
    stop.set()
    await asyncio.wait_for(running, 10)
    await server.stop(0)


def _lease(job_id: str, attempt: int) -> pb.JobLease:
    document = f'{{"run_id": 0, "parameters": {{}}, "metadata": {{"job_id": "{job_id}", "simulation_name": "t"}}}}'
    return pb.JobLease(job_id=job_id, batch_id="b", attempt=attempt, engine="basilisk", run_config_json=document)


async def test_an_unacknowledged_report_is_resent_after_a_reconnect_until_acked(scripted, monkeypatch):
    monkeypatch.setenv("FAULT_SLEEP", "0.1")
    scheduler, _agent = scripted
    first = await scheduler.next_stream()
    assert (await first.expect("register")).runner_id == "agent-1"
    first.send(lease=_lease("job-1", 1))
    report = await first.expect("job_finished")
    assert (report.job_id, report.attempt, report.result.success) == ("job-1", 1, True)
    first.close()  # the scheduler goes away before acknowledging it

    second = await scheduler.next_stream()
    assert list((await second.expect("register")).running_jobs) == []
    # resent, unchanged, before any heartbeat: a heartbeat that does not list job-1 would have the
    # scheduler take its lease for lost (and run it again) before the report arrives
    first_after_register = await asyncio.wait_for(second.inbox.get(), 10)
    assert first_after_register.WhichOneof("message") == "job_finished"
    assert first_after_register.job_finished == report
    second.send(ack=pb.ReportAck(job_id="job-1", attempt=1, accepted=True))
    await asyncio.sleep(0.3)
    second.close()

    third = await scheduler.next_stream()
    await third.expect("register")
    assert await third.nothing_but_heartbeats(0.6)  # acknowledged: not sent again


async def test_registration_and_heartbeats_list_running_attempts(scripted, monkeypatch):
    monkeypatch.setenv("FAULT_SLEEP", "30")
    scheduler, _agent = scripted
    first = await scheduler.next_stream()
    await first.expect("register")
    first.send(lease=_lease("job-2", 4))
    assert (await first.expect("job_started")).attempt == 4
    beat = await first.expect("heartbeat")
    assert [(r.job_id, r.attempt) for r in beat.running_jobs] == [("job-2", 4)]
    first.close()
    second = await scheduler.next_stream()
    assert [(r.job_id, r.attempt) for r in (await second.expect("register")).running_jobs] == [("job-2", 4)]
    second.send(cancel=pb.CancelJob(job_id="job-2", reason="not yours any more"))
    report = await second.expect("job_finished")
    assert (report.attempt, TERMINATION_REASON.name(report.result.termination_reason)) == (4, "cancelled")


async def test_a_newer_attempt_of_a_running_job_replaces_the_old_one(scripted, monkeypatch):
    monkeypatch.setenv("FAULT_SLEEP", "30")
    scheduler, _agent = scripted
    stream = await scheduler.next_stream()
    await stream.expect("register")
    stream.send(lease=_lease("job-3", 1))
    await stream.expect("job_started")
    stream.send(lease=_lease("job-3", 2))
    old = await stream.expect("job_finished")
    assert (old.attempt, TERMINATION_REASON.name(old.result.termination_reason)) == (1, "cancelled")
    assert (await stream.expect("job_started")).attempt == 2


async def _lease_ahead(stream: Stream, value: int) -> None:
    while (await stream.expect("heartbeat")).lease_ahead != value:
        pass


async def test_after_short_jobs_a_lease_held_ahead_starts_the_moment_a_slot_frees(scripted, monkeypatch, tmp_path):
    monkeypatch.setenv("FAULT_SLEEP", "0.1")
    scheduler, _agent = scripted
    stream = await scheduler.next_stream()
    await stream.expect("register")
    assert (await stream.expect("heartbeat")).lease_ahead == 0  # no job has run yet
    stream.send(lease=_lease("short", 1))
    await stream.expect("job_finished")
    await _lease_ahead(stream, 1)  # its jobs are short (under lease_ahead_below_seconds)

    monkeypatch.setenv("FAULT_SLEEP", "0.8")
    for job in ("b", "c", "d"):  # 2 slots: d waits for one
        stream.send(lease=_lease(job, 1))
    started = {(await stream.expect("job_started")).job_id for _ in range(2)}
    assert started == {"b", "c"}
    beat = await stream.expect("heartbeat")
    assert {r.job_id for r in beat.running_jobs} == {"b", "c", "d"}  # the queued lease is held, not lost
    assert (await stream.expect("job_started", timeout=15)).job_id == "d"
    marks = tmp_path / "marks"
    assert [m for m in marks.iterdir() if m.name.startswith(("b.", "c.")) and m.suffix == ".done"]
    assert not [m for m in marks.iterdir() if m.name.startswith("d.") and m.suffix == ".done"]


async def test_a_queued_lease_that_is_cancelled_never_runs(scripted, monkeypatch, tmp_path):
    monkeypatch.setenv("FAULT_SLEEP", "30")
    scheduler, _agent = scripted
    stream = await scheduler.next_stream()
    await stream.expect("register")
    for job in ("e", "f", "g"):
        stream.send(lease=_lease(job, 1))
    assert {(await stream.expect("job_started")).job_id for _ in range(2)} == {"e", "f"}
    stream.send(cancel=pb.CancelJob(job_id="g", reason="batch cancelled"))
    report = await stream.expect("job_finished")
    assert report.job_id == "g"
    assert TERMINATION_REASON.name(report.result.termination_reason) == "cancelled"
    assert "before it started" in report.result.error_message
    assert not [m for m in (tmp_path / "marks").iterdir() if m.name.startswith("g.")]


async def test_long_jobs_turn_leasing_ahead_off(scripted, monkeypatch):
    monkeypatch.setenv("FAULT_SLEEP", "0.1")
    scheduler, _agent = scripted
    stream = await scheduler.next_stream()
    await stream.expect("register")
    stream.send(lease=_lease("quick", 1))
    await _lease_ahead(stream, 1)
    monkeypatch.setenv("FAULT_SLEEP", "1.5")  # longer than lease_ahead_below_seconds
    stream.send(lease=_lease("long-1", 1))
    stream.send(lease=_lease("long-2", 1))
    await asyncio.wait_for(_lease_ahead(stream, 0), 15)

"""BasiliskEngine with throwaway Python scenarios (not Basilisk): the TETRYX_* contract and every way a job ends.

A real telemetry-ingest server (SQLite store, grpc.aio on port 0) receives what the engine relays.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as sched_pb
from lynx_common.names import TERMINATION_REASON
from lynx_runner.config import RunnerConfig
from lynx_runner.engine import JobHandle
from lynx_runner.engines import BasiliskEngine

pytestmark = pytest.mark.timeout(60)

PARAMETERS = {"semi_major_axis_m": 7012345.678, "eccentricity": 0.00125, "duration_orbits": 0.75}
METADATA = {"simulation_name": "Basic Orbit Tutorial", "runs": 5, "duration_minutes": 90.5}


@pytest.fixture
def workdir(tmp_path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def make_engine(tmp_path, workdir, telemetry):
    """Write `source` as the scenario and return an engine that runs it."""
    stub, _store = telemetry

    def make(source: str, **overrides) -> BasiliskEngine:
        script = tmp_path / "scenarios" / f"scenario_{uuid.uuid4().hex[:8]}.py"
        script.parent.mkdir(exist_ok=True)
        script.write_text(textwrap.dedent(source))
        config = RunnerConfig(
            working_directory=workdir,
            output_root=tmp_path / "runs",
            python_executable=sys.executable,
            basilisk_entrypoint=script,
        )
        return BasiliskEngine(replace(config, **overrides), "runner-test-1", stub)

    return make


def make_lease(job_id: str | None = None, run_id: int = 3, **fields) -> sched_pb.JobLease:
    document = {"run_id": run_id, "parameters": PARAMETERS, "metadata": METADATA}
    defaults = dict(
        job_id=job_id if job_id is not None else f"job-{uuid.uuid4().hex[:12]}",
        batch_id="batch-1",
        attempt=1,
        engine="basilisk",
        run_config_json=json.dumps(document),
    )
    defaults.update(fields)
    return sched_pb.JobLease(**defaults)


def is_gone(pid: int) -> bool:
    """The process no longer runs (absent, or a zombie waiting for init to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


async def wait_until_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if is_gone(pid):
            return True
        await asyncio.sleep(0.05)
    return is_gone(pid)


def kill_leftover(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def wait_for_file(path: Path, seconds: float = 15.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} was never written")


CONTRACT_SCENARIO = """
    import json, os, sys
    from pathlib import Path

    seen = {name: os.environ.get(name) for name in ("TETRYX_RUN_CONFIG", "TETRYX_TELEMETRY_URL", "TETRYX_OUTPUT_DIR")}
    missing = [name for name, value in seen.items() if not value]
    if missing:
        print("missing", missing, file=sys.stderr)
        sys.exit(9)
    raw = Path(seen["TETRYX_RUN_CONFIG"]).read_text()
    out = Path(seen["TETRYX_OUTPUT_DIR"])
    (out / "plots" / "deep").mkdir(parents=True)
    (out / "plots" / "deep" / "orbit.csv").write_text("t,r\\n0,7000\\n")
    (out / "summary.json").write_text(json.dumps({
        "env": seen,
        "run_config": json.loads(raw),
        "cwd": os.getcwd(),
        "own_group": os.getpgid(0) == os.getpid(),
        "output_dir_was_empty": sorted(p.name for p in out.iterdir()) == ["plots"],
        "socket_mode": oct(os.stat(dict(q.split("=", 1) for q in seen["TETRYX_TELEMETRY_URL"].split("?")[1].split("&"))
                                   ["unix"]).st_mode & 0o777),
    }))
    # links are not outputs, and are not followed
    outside = Path(os.environ["OUTSIDE"])
    os.symlink(outside / "secret.txt", out / "link_to_file")
    os.symlink(outside, out / "link_to_dir")
"""


async def test_successful_run_follows_the_tetryx_contract(make_engine, workdir, tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not an output")
    monkeypatch.setenv("OUTSIDE", str(outside))
    engine = make_engine(CONTRACT_SCENARIO)
    lease = make_lease(run_id=3)

    result = await engine.run(JobHandle(lease))

    assert result.success, result.error_message
    assert TERMINATION_REASON.name(result.termination_reason) == "exited"
    assert result.exit_code == 0
    assert not result.HasField("error_message")
    assert result.job_id == lease.job_id
    assert result.attempt == 1
    assert result.execution_time_secs > 0

    output_dir = (tmp_path / "runs" / lease.job_id).resolve()
    assert list(result.output_files) == [
        str(output_dir / "plots" / "deep" / "orbit.csv"),
        str(output_dir / "summary.json"),
    ]
    assert all(Path(f).is_absolute() for f in result.output_files)

    summary = json.loads((output_dir / "summary.json").read_text())
    env = summary["env"]
    assert Path(env["TETRYX_OUTPUT_DIR"]).resolve() == output_dir
    assert summary["output_dir_was_empty"]
    url = urlsplit(env["TETRYX_TELEMETRY_URL"])
    assert url.hostname == "127.0.0.1" and url.port > 0 and url.query.startswith("token=")
    # the job's Unix socket (the client's grpc-free path): private, 0600, gone after the job
    socket_path = Path(parse_qs(url.query)["unix"][0])
    private = (tmp_path / "runs" / ".lynx" / lease.job_id).resolve()  # or a short temporary dir: sun_path is short
    assert socket_path.name == "telemetry.sock" and (socket_path.parent == private or "lynx-tel-" in str(socket_path))
    assert summary["socket_mode"] == "0o600" and not socket_path.exists()
    assert socket_path.parent == private or not socket_path.parent.exists()
    # the run config is private: it exists, but is neither inside nor listed with the outputs
    run_config_path = Path(env["TETRYX_RUN_CONFIG"]).resolve()
    assert output_dir not in run_config_path.parents
    assert str(run_config_path) not in result.output_files

    run_config = summary["run_config"]
    assert isinstance(run_config["run_id"], int) and not isinstance(run_config["run_id"], bool)
    assert run_config["run_id"] == 3
    assert run_config["parameters"] == PARAMETERS
    assert list(run_config["parameters"]) == list(PARAMETERS)  # declared order is kept
    assert run_config["metadata"] == {"simulation_name": "Basic Orbit Tutorial", "runs": 5, "duration_minutes": 90.5}
    assert isinstance(run_config["metadata"]["runs"], int)

    assert Path(summary["cwd"]).resolve() == workdir.resolve()
    assert summary["own_group"], "the scenario must run in its own process group"

    assert result.metadata["engine"] == "basilisk"
    assert result.metadata["simulation_name"] == "Basic Orbit Tutorial"
    assert result.metadata["runner_id"] == "runner-test-1"
    assert result.metadata["entrypoint"] == str(engine.config.basilisk_entrypoint)
    assert result.metadata["telemetry_samples"] == "0"


async def test_nonzero_exit_reports_code_and_stderr_tail(make_engine):
    engine = make_engine(
        """
        import sys
        print("loading ephemeris...", file=sys.stderr)
        print("FATAL: eccentricity out of range", file=sys.stderr)
        print("this goes to stdout")
        sys.exit(3)
        """
    )
    result = await engine.run(JobHandle(make_lease()))
    assert not result.success
    assert result.exit_code == 3
    assert TERMINATION_REASON.name(result.termination_reason) == "exited"
    assert "code 3" in result.error_message
    assert "FATAL: eccentricity out of range" in result.error_message
    assert "this goes to stdout" not in result.error_message
    # both streams' tails travel with the result (the dashboard's run page shows them)
    assert result.stdout_tail == "this goes to stdout"
    assert result.stderr_tail.endswith("FATAL: eccentricity out of range")


async def test_long_stderr_is_cut_to_its_tail(make_engine):
    engine = make_engine(
        """
        import sys
        sys.stderr.write("HEAD-MARKER\\n" + "x" * 20000 + "\\nTAIL-MARKER\\n")
        sys.exit(1)
        """
    )
    result = await engine.run(JobHandle(make_lease()))
    assert result.exit_code == 1
    assert "TAIL-MARKER" in result.error_message
    assert "HEAD-MARKER" not in result.error_message
    assert len(result.error_message) < 3000
    assert result.stderr_tail.endswith("TAIL-MARKER") and len(result.stderr_tail) <= 4000
    assert "HEAD-MARKER" not in result.stderr_tail


async def test_timeout_kills_the_scenario(make_engine):
    engine = make_engine(
        """
        import time
        time.sleep(30)
        """
    )
    started = time.monotonic()
    result = await engine.run(JobHandle(make_lease(timeout_seconds=1)))
    elapsed = time.monotonic() - started
    assert TERMINATION_REASON.name(result.termination_reason) == "timeout"
    assert not result.success
    assert result.exit_code < 0
    assert "timed out" in result.error_message
    assert elapsed < 10


async def test_early_termination_on_telemetry_breach(make_engine, telemetry):
    _stub, store = telemetry
    engine = make_engine(
        """
        import time
        from lynx_telemetry_client import telemetry_client_from_env

        client = telemetry_client_from_env()
        client.send({"x": 1.0}, timestamp_ns=1_000_000_000)
        client.send({"x": 100.0}, timestamp_ns=2_000_000_000)
        client.flush()
        time.sleep(30)
        """
    )
    lease = make_lease(
        early_termination=cfg.EarlyTermination(
            enabled=True,
            check_frequency_hz=20,
            conditions=[cfg.TerminationCondition(variable="x", condition="> 50", description="x ran away")],
        ),
        telemetry=cfg.TelemetryConfig(sampling_rate_hz=0),
    )
    started = time.monotonic()
    result = await engine.run(JobHandle(lease))
    elapsed = time.monotonic() - started

    assert TERMINATION_REASON.name(result.termination_reason) == "early_termination", result.error_message
    assert not result.success
    assert "x > 50" in result.error_message
    assert "100" in result.error_message
    assert "x ran away" in result.error_message
    assert elapsed < 15
    assert result.metadata["telemetry_samples"] == "2"

    series = await store.query(lease.job_id, [], None, None, 0)
    assert series == {"x": ([1_000_000_000, 2_000_000_000], [1.0, 100.0])}


async def test_telemetry_without_conditions_is_relayed_and_job_succeeds(make_engine, telemetry):
    _stub, store = telemetry
    engine = make_engine(
        """
        from lynx_telemetry_client import telemetry_client_from_env

        with telemetry_client_from_env() as client:
            for i in range(5):
                client.send({"orbit.radius_km": 7000.0 + i, "noise": -1.0}, timestamp_ns=i * 10**9)
        """
    )
    lease = make_lease(telemetry=cfg.TelemetryConfig(variables=["orbit.radius_km"]))
    result = await engine.run(JobHandle(lease))
    assert result.success, result.error_message
    assert result.metadata["telemetry_samples"] == "5"
    series = await store.query(lease.job_id, [], None, None, 0)
    times = [0, 10**9, 2 * 10**9, 3 * 10**9, 4 * 10**9]
    assert series == {"orbit.radius_km": (times, [7000.0, 7001.0, 7002.0, 7003.0, 7004.0])}


GRANDCHILD_SCENARIO = """
    import os, subprocess, time
    from pathlib import Path

    child = subprocess.Popen(["sleep", "60"])
    Path(os.environ["PID_FILE"]).write_text(str(child.pid))
    {after}
"""


async def test_cancel_kills_the_scenario_and_its_grandchildren(make_engine, tmp_path, monkeypatch):
    pid_file = tmp_path / "grandchild.pid"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    engine = make_engine(GRANDCHILD_SCENARIO.format(after="time.sleep(30)"))
    handle = JobHandle(make_lease())
    started = time.monotonic()
    task = asyncio.create_task(engine.run(handle))
    pid = None
    try:
        pid = int(await wait_for_file(pid_file))
        assert not is_gone(pid)
        handle.cancel("user stopped the batch")
        result = await asyncio.wait_for(task, 15)
        assert TERMINATION_REASON.name(result.termination_reason) == "cancelled"
        assert not result.success
        assert "user stopped the batch" in result.error_message
        assert time.monotonic() - started < 20
        assert await wait_until_gone(pid), f"grandchild {pid} survived the cancel"
    finally:
        if pid is not None:
            kill_leftover(pid)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_grandchildren_left_behind_by_a_finished_scenario_are_reaped(make_engine, tmp_path, monkeypatch):
    pid_file = tmp_path / "grandchild.pid"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    engine = make_engine(GRANDCHILD_SCENARIO.format(after="pass"))
    pid = None
    try:
        result = await engine.run(JobHandle(make_lease()))
        pid = int(pid_file.read_text())
        assert result.success, result.error_message
        assert await wait_until_gone(pid), f"grandchild {pid} outlived its scenario"
    finally:
        if pid is not None:
            kill_leftover(pid)


async def test_retry_starts_from_an_empty_output_directory(make_engine, tmp_path):
    engine = make_engine(
        """
        import json, os
        from pathlib import Path
        out = Path(os.environ["TETRYX_OUTPUT_DIR"])
        before = sorted(p.name for p in out.iterdir())
        (out / f"seen-by-{os.getpid()}.json").write_text(json.dumps(before))
        """
    )
    first = await engine.run(JobHandle(make_lease(job_id="job-retry", attempt=1)))
    second = await engine.run(JobHandle(make_lease(job_id="job-retry", attempt=2)))
    assert first.success and second.success
    assert len(first.output_files) == 1 and len(second.output_files) == 1
    assert first.output_files[0] != second.output_files[0]
    assert json.loads(Path(second.output_files[0]).read_text()) == []
    assert second.attempt == 2


@pytest.mark.parametrize(
    "job_id",
    [
        "../x",
        "../../etc",
        "a/b",
        "/abs",
        ".lynx",
        "",
        "-rf",
        "x" * 129,
        "job id",
        "job-1\n",
    ],
)
async def test_unsafe_job_ids_are_refused(make_engine, tmp_path, job_id):
    marker = tmp_path / "ran.txt"
    engine = make_engine(f"from pathlib import Path; Path({str(marker)!r}).write_text('ran')")
    result = await engine.run(JobHandle(make_lease(job_id=job_id)))
    assert TERMINATION_REASON.name(result.termination_reason) == "launch_error"
    assert not result.success
    assert "job id" in result.error_message
    assert not marker.exists(), "the scenario must not run"
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


async def test_missing_entrypoint_is_a_launch_error(make_engine, tmp_path):
    engine = make_engine("pass", basilisk_entrypoint=tmp_path / "nope.py")
    result = await engine.run(JobHandle(make_lease()))
    assert TERMINATION_REASON.name(result.termination_reason) == "launch_error"
    assert not result.success
    assert "nope.py" in result.error_message


async def test_missing_python_is_a_launch_error(make_engine):
    engine = make_engine("pass", python_executable="python-lynx-does-not-exist")
    result = await engine.run(JobHandle(make_lease()))
    assert TERMINATION_REASON.name(result.termination_reason) == "launch_error"
    assert not result.success
    assert "python-lynx-does-not-exist" in result.error_message

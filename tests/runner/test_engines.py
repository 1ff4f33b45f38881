"""Engines with real processes and a real telemetry-ingest server on 127.0.0.1.

Covers: cold and warm starts that a scenario cannot tell apart, the command engine running a bash
scenario with stdout telemetry, process-group kills (grandchildren included), capped logs, memory
limits, output files with digests, early-termination fields and a fork server that dies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as sched_pb
from lynx_common.names import TERMINATION_REASON
from lynx_runner.config import CommandSpec, RunnerConfig
from lynx_runner.engine import JobHandle
from lynx_runner.engines import BasiliskEngine, CommandEngine, build_engines

pytestmark = pytest.mark.timeout(90)
SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
def base_config(tmp_path) -> RunnerConfig:
    work = tmp_path / "work"
    work.mkdir()
    return RunnerConfig(working_directory=work, output_root=tmp_path / "runs", python_executable=sys.executable,
                        basilisk_entrypoint=SCENARIOS / "probe.py")


@pytest.fixture
async def engines(telemetry):
    """Build engines from configs; every engine is closed (fork servers stopped) after the test."""
    stub, _ = telemetry
    built = []

    async def make(config: RunnerConfig, kind: type = BasiliskEngine):
        engine = kind(config, "runner-test", stub)
        await engine.start()
        built.append(engine)
        if hasattr(engine, "wait_warm"):
            await engine.wait_warm()  # the fork server starts in the background
        return engine

    yield make
    for engine in built:
        await engine.close()


def lease(job_id: str | None = None, parameters: dict | None = None, **fields) -> sched_pb.JobLease:
    document = {"run_id": 7, "parameters": parameters or {}, "metadata": {"simulation_name": "Probe"}}
    values = dict(job_id=job_id or f"job-{uuid.uuid4().hex[:10]}", batch_id="batch-1", attempt=1,
                  engine="basilisk", run_config_json=json.dumps(document))
    values.update(fields)
    return sched_pb.JobLease(**values)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


async def gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive(pid):
        await asyncio.sleep(0.05)
    return not alive(pid)


async def file_text(path: Path, seconds: float = 20.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} was never written")


def probe_of(result: sched_pb.JobResult) -> dict:
    [path] = [f.path for f in result.files if f.relative_path == "probe.json"]
    return json.loads(Path(path).read_text())


# ---------------------------------------------------------------- cold and warm look the same


MODES = [("ok", 0), ("exit3", 3), ("raise", 1), ("sigkill", -signal.SIGKILL), ("sigterm_handled", 7),
         ("sigterm_default", -signal.SIGTERM), ("exit_text", 1)]


async def run_modes(engine, job_prefix: str) -> tuple[dict[str, sched_pb.JobResult], dict[str, dict]]:
    """Each mode's result and what its probe saw (read at once: the next engine reuses the job ids)."""
    results, seen = {}, {}
    for mode, _ in MODES:
        results[mode] = await engine.run(JobHandle(lease(f"{job_prefix}-{mode}", {"mode": mode})))
        seen[mode] = probe_of(results[mode])
        seen[mode]["written"] = {f.relative_path: Path(f.path).read_text() for f in results[mode].files
                                 if f.relative_path != "probe.json"}
        seen[mode]["stdout"] = (engine.config.output_root / ".lynx" / results[mode].job_id / "stdout.log").read_text()
    return results, seen


async def test_a_scenario_cannot_tell_a_warm_start_from_a_cold_one(engines, base_config, tmp_path):
    cold = await engines(replace(base_config, warm_start=False))
    warm = await engines(replace(base_config, warm_start=True, preload=("json", "numpy")))
    assert warm.forkserver is not None and warm.forkserver.alive
    assert warm.forkserver.preloaded == ["json", "numpy"]

    cold_results, cold_seen = await run_modes(cold, "job")
    warm_results, warm_seen = await run_modes(warm, "job")  # same job ids: same paths, same run config

    for mode, expected_code in MODES:
        c, w = cold_results[mode], warm_results[mode]
        assert c.metadata["start"] == "cold" and w.metadata["start"] == "warm"
        assert (c.exit_code, w.exit_code) == (expected_code, expected_code), mode
        assert c.success == w.success == (expected_code == 0)
        assert [TERMINATION_REASON.name(r.termination_reason) for r in (c, w)] == ["exited", "exited"]
        seen_cold, seen_warm = cold_seen[mode], warm_seen[mode]
        assert seen_cold.pop("telemetry_host") == seen_warm.pop("telemetry_host") == "127.0.0.1"
        assert seen_cold.pop("random") != seen_warm.pop("random")
        assert seen_cold == seen_warm, mode
        assert seen_cold["name"] == "__main__"
        assert seen_cold["argv"] == [str(base_config.basilisk_entrypoint)]
        assert seen_cold["cwd"] == str(base_config.working_directory)
        assert seen_cold["own_session"] and seen_cold["stdin_is_devnull"] and seen_cold["stdout_is_pipe"]
        assert seen_cold["run_config"]["parameters"] == {"mode": mode}

    assert "ValueError: boom from the probe" in cold_results["raise"].error_message
    assert warm_results["raise"].error_message == cold_results["raise"].error_message  # same traceback
    assert "not an exit code" in warm_results["exit_text"].error_message
    for seen in (cold_seen, warm_seen):
        assert seen["ok"]["written"] == {"atexit.txt": "atexit ran", "thread.txt": "non-daemon thread finished",
                                         "unclosed.txt": "buffered until exit",
                                         "collected.txt": "__del__ ran at exit"}
        assert seen["ok"]["stdout"] == "probe says hello\n"


async def test_warm_jobs_get_fresh_random_state(engines, base_config):
    warm = await engines(replace(base_config, preload=("random", "numpy")))
    first = probe_of(await warm.run(JobHandle(lease(parameters={"mode": "ok"}))))
    second = probe_of(await warm.run(JobHandle(lease(parameters={"mode": "ok"}))))
    assert first["random"] != second["random"]


async def test_a_preload_that_fails_is_reported_and_jobs_still_run(engines, base_config, caplog):
    warm = await engines(replace(base_config, preload=("json", "lynx_no_such_module_xyz")))
    assert warm.forkserver.preloaded == ["json"]
    assert "lynx_no_such_module_xyz" in warm.forkserver.failed
    assert "could not preload lynx_no_such_module_xyz" in caplog.text
    result = await warm.run(JobHandle(lease(parameters={"mode": "ok"})))
    assert result.success and result.metadata["start"] == "warm"


async def test_a_dead_fork_server_is_restarted_and_its_running_job_reported(engines, base_config, tmp_path):
    warm = await engines(base_config)
    handle = JobHandle(lease(parameters={"mode": "sleep"}))
    task = asyncio.create_task(warm.run(handle))
    await file_text(tmp_path / "runs" / handle.lease.job_id / "probe.json")
    first_server = warm.forkserver
    first_server.kill()
    result = await asyncio.wait_for(task, 30)
    assert TERMINATION_REASON.name(result.termination_reason) == "runner_lost"
    assert "fork server died" in result.error_message
    assert not result.success

    again = await warm.run(JobHandle(lease(parameters={"mode": "ok"})))
    assert again.success, again.error_message
    assert again.metadata["start"] == "warm"
    assert warm.forkserver is not first_server and warm.forkserver.alive


async def test_a_warm_job_runs_the_entrypoint_as_it_is_on_disk_now(engines, base_config, tmp_path):
    """The fork server compiles the entrypoint once; a job started after the file changed runs the
    new file, and a file that no longer compiles fails the job as `python entrypoint` would."""
    script = tmp_path / "scenario.py"
    script.write_text("import os, pathlib\n"
                      "pathlib.Path(os.environ['TETRYX_OUTPUT_DIR'], 'version.txt').write_text('one')\n")
    engine = await engines(replace(base_config, warm_start=True, basilisk_entrypoint=script))
    first = await engine.run(JobHandle(lease()))
    assert first.success and first.metadata["start"] == "warm", first.error_message
    assert (base_config.output_root / first.job_id / "version.txt").read_text() == "one"
    script.write_text(script.read_text().replace("'one'", "'two'"))
    second = await engine.run(JobHandle(lease()))
    assert second.success and second.metadata["start"] == "warm", second.error_message
    assert (base_config.output_root / second.job_id / "version.txt").read_text() == "two"
    script.write_text("def broken(:\n")
    third = await engine.run(JobHandle(lease()))
    assert third.exit_code == 1 and third.metadata["start"] == "warm"
    assert "SyntaxError" in third.error_message


async def test_warm_start_falls_back_to_cold_when_the_server_cannot_start(engines, base_config, tmp_path):
    fake_python = tmp_path / "python-that-exits"
    fake_python.write_text(f"#!/bin/sh\ncase \"$1\" in *forkserver.py) exit 1;; esac\nexec {sys.executable} \"$@\"\n")
    fake_python.chmod(0o755)
    engine = await engines(replace(base_config, python_executable=str(fake_python)))
    assert engine.forkserver is None
    result = await engine.run(JobHandle(lease(parameters={"mode": "ok"})))
    assert result.success, result.error_message
    assert result.metadata["start"] == "cold"


# ---------------------------------------------------------------- the command engine


def bash_config(base: RunnerConfig, *args: str) -> RunnerConfig:
    return replace(base, engines=("command",), command=CommandSpec(str(SCENARIOS / "orbit.sh"), args))


async def test_bash_scenario_runs_end_to_end_with_stdout_telemetry(engines, base_config, telemetry):
    _, store = telemetry
    config = bash_config(base_config, "--config", "{run_config}", "--out", "{output_dir}", "--steps", "5")
    engine = await engines(config, CommandEngine)
    job = lease(engine="command", telemetry=cfg.TelemetryConfig(variables=["orbit.radius_km"]))

    result = await engine.run(JobHandle(job))

    assert result.success, result.error_message
    assert result.metadata["engine"] == "command"
    assert result.telemetry_samples_sent == 5
    assert result.telemetry_samples_dropped == 1  # the one malformed TETRYX line
    assert {k: v for k, v in result.metadata.items() if k.startswith("telemetry_") and k != "telemetry_samples"} == {
        "telemetry_dropped_client": "1", "telemetry_dropped_relay": "0", "telemetry_unshipped": "0",
        "telemetry_filtered": "0", "telemetry_stored": "5", "telemetry_lines_malformed": result.metadata[
            "telemetry_lines_malformed"]}
    series = await store.query(job.job_id, [], None, None, 0)
    assert series["orbit.radius_km"][1] == [7000.0, 6900.0, 6800.0, 6700.0, 6600.0]
    assert set(series) == {"orbit.radius_km"}
    files = {f.relative_path: f for f in result.files}
    assert set(files) == {"summary.json", "nested/deeper/trajectory.csv"}
    summary = json.loads(Path(files["summary.json"].path).read_text())
    assert summary["run_config_arg"] == summary["run_config_env"]
    assert summary["out_arg"] == summary["out_env"] == str(base_config.output_root.resolve() / job.job_id)


async def test_watchdog_fires_on_stdout_telemetry_and_kills_the_bash_group(engines, base_config, telemetry,
                                                                          tmp_path, monkeypatch):
    _, store = telemetry
    pid_file = tmp_path / "grandchild.pid"
    monkeypatch.setenv("GRANDCHILD_PID_FILE", str(pid_file))
    config = bash_config(base_config, "--config", "{run_config}", "--out", "{output_dir}", "--steps", "100",
                         "--then-sleep")
    engine = await engines(config, CommandEngine)
    job = lease(engine="command", early_termination=cfg.EarlyTermination(
        enabled=True, check_frequency_hz=20,
        conditions=[cfg.TerminationCondition(variable="orbit.radius_km", condition="<= 6.5e3",
                                             description="below the safe altitude")]))
    started = time.monotonic()
    result = await engine.run(JobHandle(job))

    assert time.monotonic() - started < 20
    assert TERMINATION_REASON.name(result.termination_reason) == "early_termination"
    assert not result.success
    assert result.termination_variable == "orbit.radius_km"
    assert result.termination_condition == "<= 6500"
    assert result.termination_value == 6500.0
    assert "orbit.radius_km <= 6500" in result.error_message and "6500" in result.error_message
    assert "below the safe altitude" in result.error_message
    grandchild = int(pid_file.read_text())
    assert await gone(grandchild), "the scenario's grandchild survived the kill"
    series = await store.query(job.job_id, ["orbit.radius_km"], None, None, 0)
    assert 6500.0 in series["orbit.radius_km"][1]


async def test_placeholders_are_substituted_without_a_shell(engines, base_config, tmp_path):
    marker = tmp_path / "pwned"
    config = replace(base_config, engines=("command",), command=CommandSpec(
        "/bin/echo", ("job={job_id}", "run={run_id}", "attempt={attempt}", f"; touch {marker}", "$(id)")))
    engine = await engines(config, CommandEngine)
    job = lease(engine="command")
    result = await engine.run(JobHandle(job))
    assert result.success, result.error_message
    stdout = (base_config.output_root / ".lynx" / job.job_id / "stdout.log").read_text()
    assert stdout.strip() == f"job={job.job_id} run=7 attempt=1 ; touch {marker} $(id)"
    assert not marker.exists()


async def test_missing_command_executable_is_a_launch_error(engines, base_config, tmp_path):
    config = replace(base_config, engines=("command",), command=CommandSpec(str(tmp_path / "nope"), ()))
    engine = await engines(config, CommandEngine)
    result = await engine.run(JobHandle(lease(engine="command")))
    assert TERMINATION_REASON.name(result.termination_reason) == "launch_error"
    assert "nope" in result.error_message


def test_build_engines_serves_each_configured_engine(base_config):
    config = replace(base_config, engines=("basilisk", "command"), command=CommandSpec("/bin/true", ()))
    built = build_engines(config, "r", None)
    assert set(built) == {"basilisk", "command"}
    assert isinstance(built["command"], CommandEngine)


# ---------------------------------------------------------------- isolation and hygiene


@pytest.mark.parametrize("warm", [False, True])
async def test_timeout_kills_the_whole_group_grandchildren_included(engines, base_config, tmp_path, warm):
    engine = await engines(replace(base_config, warm_start=warm))
    job = lease(parameters={"mode": "grandchild"}, timeout_seconds=1.5)
    result = await engine.run(JobHandle(job))
    assert TERMINATION_REASON.name(result.termination_reason) == "timeout"
    assert result.exit_code == -signal.SIGKILL
    grandchild = int((tmp_path / "runs" / job.job_id / "grandchild.pid").read_text())
    assert await gone(grandchild), f"grandchild {grandchild} survived ({'warm' if warm else 'cold'})"


@pytest.mark.parametrize("warm", [False, True])
async def test_cancel_kills_a_warm_or_cold_job(engines, base_config, tmp_path, warm):
    engine = await engines(replace(base_config, warm_start=warm))
    handle = JobHandle(lease(parameters={"mode": "grandchild"}))
    task = asyncio.create_task(engine.run(handle))
    pid = int(await file_text(tmp_path / "runs" / handle.lease.job_id / "grandchild.pid"))
    handle.cancel("user stopped the batch")
    result = await asyncio.wait_for(task, 20)
    assert TERMINATION_REASON.name(result.termination_reason) == "cancelled"
    assert "user stopped the batch" in result.error_message
    assert await gone(pid)


async def test_logs_are_capped_keeping_the_head_and_error_keeps_the_stderr_tail(engines, base_config):
    engine = await engines(replace(base_config, log_cap_bytes=64 * 1024))
    job = lease(parameters={"mode": "flood"})
    result = await engine.run(JobHandle(job))
    assert result.exit_code == 5
    private = base_config.output_root / ".lynx" / job.job_id
    stdout = (private / "stdout.log").read_bytes()
    stderr = (private / "stderr.log").read_bytes()
    assert stdout.startswith(b"HEAD-OF-STDOUT")
    assert len(stdout) < 64 * 1024 + 200
    assert b"log capped at 65536 bytes" in stdout
    assert b"TAIL-OF-STDOUT" not in stdout
    assert len(stderr) < 64 * 1024 + 200
    assert "LAST-WORDS-ON-STDERR" in result.error_message  # the tail survives the cap
    assert len(result.error_message) < 2200


async def test_memory_limit_turns_a_memory_error_into_out_of_memory(engines, base_config):
    engine = await engines(replace(base_config, job_memory_limit=200 * 2**20))
    result = await engine.run(JobHandle(lease(parameters={"mode": "hog_heap"})))
    assert TERMINATION_REASON.name(result.termination_reason) == "out_of_memory", result.error_message
    assert not result.success
    assert "200 MiB" in result.error_message
    assert result.metadata["memory_limit_bytes"] == str(200 * 2**20)


async def test_the_batch_memory_request_wins_over_the_runner_limit(engines, base_config):
    engine = await engines(replace(base_config, job_memory_limit=2**30))
    request = cfg.Compute(container=cfg.Container(memory_request="200Mi"))
    result = await engine.run(JobHandle(lease(parameters={"mode": "hog_heap"}, compute=request)))
    assert TERMINATION_REASON.name(result.termination_reason) == "out_of_memory", result.error_message
    assert result.metadata["memory_limit_bytes"] == str(200 * 2**20)
    request.container.memory_request = "lots"
    result = await engine.run(JobHandle(lease(parameters={"mode": "ok"}, compute=request)))
    assert TERMINATION_REASON.name(result.termination_reason) == "launch_error"
    assert "compute.container.memory_request must be a memory quantity" in result.error_message


async def test_resident_memory_over_the_limit_is_killed(engines, base_config):
    # shared anonymous memory escapes RLIMIT_DATA; the runner's /proc polling catches it
    engine = await engines(replace(base_config, job_memory_limit=150 * 2**20, warm_start=False))
    started = time.monotonic()
    result = await engine.run(JobHandle(lease(parameters={"mode": "hog_shared"})))
    assert time.monotonic() - started < 20
    assert TERMINATION_REASON.name(result.termination_reason) == "out_of_memory", result.error_message
    assert result.exit_code == -signal.SIGKILL
    assert "over its limit of 150 MiB" in result.error_message


async def test_within_its_memory_limit_a_job_succeeds(engines, base_config):
    engine = await engines(replace(base_config, job_memory_limit=2**30, preload=("numpy",)))
    result = await engine.run(JobHandle(lease(parameters={"mode": "ok"})))
    assert result.success, result.error_message


async def test_every_output_file_is_collected_with_size_and_digest_and_links_are_not(engines, base_config,
                                                                                    tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not an output")
    monkeypatch.setenv("OUTSIDE", str(outside))
    engine = await engines(base_config)
    job = lease(parameters={"mode": "outputs"})
    result = await engine.run(JobHandle(job))
    assert result.success, result.error_message
    out = (base_config.output_root / job.job_id).resolve()
    by_rel = {f.relative_path: f for f in result.files}
    assert set(by_rel) == {"probe.json", "atexit.txt", "thread.txt", "unclosed.txt", "collected.txt", "a.txt",
                           "sub/dir/b.bin"}
    assert list(result.output_files) == sorted(f.path for f in result.files)
    b = by_rel["sub/dir/b.bin"]
    assert b.path == str(out / "sub" / "dir" / "b.bin")
    assert b.size_bytes == 3000
    assert b.sha256 == hashlib.sha256(bytes(range(256)) * 11 + bytes(range(184))).hexdigest()
    assert all(not f.path.startswith(str(outside)) for f in result.files)


async def test_an_output_dir_swapped_for_a_link_yields_nothing(engines, base_config, tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not an output")
    monkeypatch.setenv("OUTSIDE", str(outside))
    engine = await engines(base_config)
    job = lease(parameters={"mode": "swap_output_dir"})
    result = await engine.run(JobHandle(job))
    assert result.success, result.error_message
    assert list(result.files) == [] and list(result.output_files) == []
    again = await engine.run(JobHandle(lease(job.job_id, {"mode": "ok"}, attempt=2)))
    assert again.success, again.error_message
    assert (outside / "secret.txt").read_text() == "not an output"
    assert not (base_config.output_root / job.job_id).is_symlink()


async def test_grpc_telemetry_counts_and_early_termination_fields(engines, base_config):
    engine = await engines(base_config)
    job = lease(parameters={"mode": "telemetry"}, early_termination=cfg.EarlyTermination(
        enabled=True, check_frequency_hz=20,
        conditions=[cfg.TerminationCondition(variable="x", condition="> 2.5E1", description="x ran away")]))
    result = await engine.run(JobHandle(job))
    assert TERMINATION_REASON.name(result.termination_reason) == "early_termination"
    assert (result.termination_variable, result.termination_condition) == ("x", "> 25")
    assert result.termination_value == 100.0
    assert "x > 25" in result.error_message and "100" in result.error_message
    assert result.telemetry_samples_sent == 2
    assert result.telemetry_samples_dropped == 0


def test_bash_scenario_is_executable():
    assert os.access(SCENARIOS / "orbit.sh", os.X_OK)


async def test_a_warm_up_script_runs_once_in_the_fork_server(engines, base_config, tmp_path):
    marker = tmp_path / "warmed.txt"
    script = tmp_path / "warm_up.py"
    script.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text(str(__import__('os').getpid()))\n"
                      "WARMED = True\n")
    warm = await engines(replace(base_config, warm_up=script))
    server_pid = int(marker.read_text())
    first = probe_of(await warm.run(JobHandle(lease(parameters={"mode": "ok"}))))
    await warm.run(JobHandle(lease(parameters={"mode": "ok"})))
    assert int(marker.read_text()) == server_pid, "the warm-up ran again"
    assert "WARMED" not in first["starting_globals"]


async def test_auto_preload_imports_what_the_entrypoint_imports_at_top_level(engines, base_config):
    warm = await engines(base_config)  # preload defaults to ("auto",)
    assert base_config.preload == ("auto",)
    assert {"json", "mmap", "subprocess", "pathlib"} <= set(warm.forkserver.preloaded)
    assert "pathlib.Path" not in warm.forkserver.preloaded  # a class, not a module
    assert "lynx_telemetry_client" not in warm.forkserver.preloaded  # imported inside a branch only
    result = await warm.run(JobHandle(lease(parameters={"mode": "ok"})))
    assert result.success and result.metadata["start"] == "warm"


async def test_a_preload_that_starts_threads_makes_the_runner_start_jobs_cold(engines, base_config, tmp_path,
                                                                            monkeypatch, caplog):
    (tmp_path / "threaded_module.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    engine = await engines(replace(base_config, preload=("threaded_module",)))
    assert engine.forkserver is None
    assert "forking them is unsafe" in caplog.text
    result = await engine.run(JobHandle(lease(parameters={"mode": "ok"})))
    assert result.success and result.metadata["start"] == "cold"


async def test_two_warm_jobs_at_once_each_get_their_own_exit(engines, base_config):
    warm = await engines(base_config)
    results = await asyncio.gather(
        warm.run(JobHandle(lease(parameters={"mode": "exit3"}))),
        warm.run(JobHandle(lease(parameters={"mode": "ok"}))),
        warm.run(JobHandle(lease(parameters={"mode": "sigkill"}))),
    )
    assert [r.exit_code for r in results] == [3, 0, -signal.SIGKILL]
    assert all(r.metadata["start"] == "warm" for r in results)


async def test_the_runner_does_not_wait_for_the_fork_server_to_preload(engines, base_config, tmp_path):
    slow = tmp_path / "slow_warm_up.py"
    slow.write_text("import time\ntime.sleep(3)\n")
    engine = BasiliskEngine(replace(base_config, warm_up=slow), "runner-test", None)
    started = time.monotonic()
    await engine.start()
    try:
        assert time.monotonic() - started < 1.0, "start() waited for the preload"
        assert engine.forkserver is None
        await engine.wait_warm()
        assert engine.forkserver is not None and engine.forkserver.alive
    finally:
        await engine.close()


async def test_closing_while_the_fork_server_preloads_leaves_nothing_running(base_config, tmp_path):
    marker = tmp_path / "pid"
    slow = tmp_path / "slow_warm_up.py"
    slow.write_text(f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\ntime.sleep(30)\n")
    engine = BasiliskEngine(replace(base_config, warm_up=slow), "runner-test", None)
    await engine.start()
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    pid = int(marker.read_text())
    await engine.close()
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not alive(pid)

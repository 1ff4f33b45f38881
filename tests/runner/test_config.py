"""Runner config: the tutorial YAML, LYNX_RUNNER_* overrides and the errors a user gets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lynx_common.errors import ValidationError
from lynx_runner.config import (
    AUTO_WARM_UP,
    CommandSpec,
    RunnerConfig,
    load_config,
    parse_memory,
    resolve_python,
)

REPO = Path(__file__).resolve().parents[2]
TUTORIAL_CONFIG = REPO / "configs" / "lynx-runner-basilisk.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "runner.yaml"
    path.write_text(text)
    return path


def test_tutorial_config_loads_with_resolved_paths(monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(TUTORIAL_CONFIG, env={})
    assert config.engines == ("basilisk",)
    assert config.capabilities == ("basilisk", "orbit", "aerospace")
    assert config.working_directory == REPO
    assert config.working_directory.is_absolute()
    assert config.output_root == Path("/tmp/tetryx-runs")
    assert config.python_executable == "python3"
    assert config.max_concurrent_jobs == 1
    assert config.heartbeat_interval_secs == 2.0
    assert config.lease_ahead_below_seconds == 30.0
    assert config.entrypoint_path == REPO / "scenarios/aerospace/python/scenario_basic_orbit_lynx.py"
    assert config.entrypoint_path.is_file()


def test_no_file_and_no_env_gives_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={})
    assert config == RunnerConfig(working_directory=tmp_path.resolve())


def test_empty_file_gives_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(write(tmp_path, ""), env={}) == RunnerConfig(working_directory=tmp_path.resolve())


def test_every_env_override_wins_over_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "LYNX_RUNNER_ENGINES": "basilisk",
        "LYNX_RUNNER_CAPABILITIES": " gpu , orbit,,basilisk ",
        "LYNX_RUNNER_PYTHON_EXECUTABLE": "/opt/py/bin/python3.11",
        "LYNX_RUNNER_BASILISK_ENTRYPOINT": "sims/run.py",
        "LYNX_RUNNER_OUTPUT_ROOT": str(tmp_path / "out"),
        "LYNX_RUNNER_WORKING_DIRECTORY": str(work),
        "LYNX_RUNNER_MAX_CONCURRENT_JOBS": "4",
        "LYNX_RUNNER_HEARTBEAT_INTERVAL_SECS": "0.5",
        "LYNX_RUNNER_LEASE_AHEAD_BELOW_SECONDS": "0",
        "LYNX_SCHEDULER_ADDR": "127.0.0.1:1",  # not a runner config field: ignored
        "UNRELATED": "x",
    }
    config = load_config(TUTORIAL_CONFIG, env=env)
    assert config.engines == ("basilisk",)
    assert config.capabilities == ("gpu", "orbit", "basilisk")
    assert config.python_executable == "/opt/py/bin/python3.11"
    assert config.basilisk_entrypoint == Path("sims/run.py")
    assert config.output_root == tmp_path / "out"
    assert config.working_directory == work.resolve()
    assert config.entrypoint_path == work.resolve() / "sims/run.py"
    assert config.max_concurrent_jobs == 4
    assert config.heartbeat_interval_secs == 0.5
    assert config.lease_ahead_below_seconds == 0  # never lease ahead


def test_relative_paths_resolve_against_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={"LYNX_RUNNER_WORKING_DIRECTORY": "sub", "LYNX_RUNNER_OUTPUT_ROOT": "runs"})
    assert config.working_directory == (tmp_path / "sub").resolve()
    assert config.output_root == tmp_path / "runs"
    assert config.output_root.is_absolute()


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={"LYNX_RUNNER_OUTPUT_ROOT": "~/lynx-runs"})
    assert config.output_root == tmp_path / "lynx-runs"


def test_yaml_lists_and_comma_strings_are_equivalent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = load_config(write(tmp_path, "capabilities: [orbit, basilisk]\n"), env={})
    b = load_config(write(tmp_path, "capabilities: 'orbit, basilisk'\n"), env={})
    assert a.capabilities == b.capabilities == ("orbit", "basilisk")


@pytest.mark.parametrize(
    ("yaml_text", "env", "field"),
    [
        ("engine: basilisk\n", {}, "engine"),
        ("", {"LYNX_RUNNER_MAX_CONCURRENT_JOBS": "two"}, "max_concurrent_jobs"),
        ("max_concurrent_jobs: 0\n", {}, "max_concurrent_jobs"),
        ("max_concurrent_jobs: -3\n", {}, "max_concurrent_jobs"),
        ("", {"LYNX_RUNNER_MAX_CONCURRENT_JOBS": "1.5"}, "max_concurrent_jobs"),
        ("max_concurrent_jobs: null\n", {}, "max_concurrent_jobs"),
        ("max_concurrent_jobs: 2.7\n", {}, "max_concurrent_jobs"),
        ("heartbeat_interval_secs: soon\n", {}, "heartbeat_interval_secs"),
        ("heartbeat_interval_secs: 0\n", {}, "heartbeat_interval_secs"),
        ("heartbeat_interval_secs: 61\n", {}, "heartbeat_interval_secs"),
        ("lease_ahead_below_seconds: -1\n", {}, "lease_ahead_below_seconds"),
        ("", {"LYNX_RUNNER_LEASE_AHEAD_BELOW_SECONDS": "often"}, "lease_ahead_below_seconds"),
        ("", {"LYNX_RUNNER_HEARTBEAT_INTERVAL_SECS": "nan"}, "heartbeat_interval_secs"),
        ("engines: [basilisk, gazebo]\n", {}, "engines"),
        ("", {"LYNX_RUNNER_ENGINES": "basilisk,gazebo"}, "engines"),
        ("engines: []\n", {}, "engines"),
        ("", {"LYNX_RUNNER_CAPABILITIES": " , "}, "capabilities"),
        ("capabilities: {a: 1}\n", {}, "capabilities"),
        ("python_executable: ''\n", {}, "python_executable"),
        ("output_root: 42\n", {}, "output_root"),
        ("basilisk_entrypoint: null\n", {}, "basilisk_entrypoint"),
        ("working_directory: /definitely/not/here\n", {}, "working_directory"),
        ("", {"LYNX_RUNNER_WORKING_DIRECTORY": "/definitely/not/here"}, "working_directory"),
        ("engines: [basilisk\n", {}, "--config"),
        ("- basilisk\n- orbit\n", {}, "--config"),
    ],
)
def test_bad_config_names_the_field(tmp_path, monkeypatch, yaml_text, env, field):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError) as err:
        load_config(write(tmp_path, yaml_text), env=env)
    assert err.value.field == field
    assert str(err.value).startswith(field + " ")


def test_working_directory_that_is_a_file_is_rejected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValidationError) as err:
        load_config(None, env={"LYNX_RUNNER_WORKING_DIRECTORY": str(tmp_path / "file")})
    assert err.value.field == "working_directory"


def test_unknown_field_error_lists_the_known_fields(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError) as err:
        load_config(write(tmp_path, "max_jobs: 3\n"), env={})
    assert err.value.field == "max_jobs"
    assert "max_concurrent_jobs" in str(err.value)


def test_missing_config_file_is_reported(tmp_path):
    with pytest.raises(ValidationError) as err:
        load_config(tmp_path / "absent.yaml", env={})
    assert err.value.field == "--config"


def test_resolve_python_prefers_the_runners_own_environment(tmp_path, monkeypatch):
    own_bin = Path(sys.executable).parent
    if not (own_bin / "python3").exists():
        pytest.skip("the running interpreter has no python3 beside it")
    # a decoy python3 earlier on PATH must lose to the runner's own environment
    decoy = tmp_path / "bin"
    decoy.mkdir()
    (decoy / "python3").write_text("#!/bin/sh\nexit 1\n")
    (decoy / "python3").chmod(0o755)
    monkeypatch.setenv("PATH", f"{decoy}{os.pathsep}{os.environ.get('PATH', '')}")
    assert resolve_python("python3") == str(own_bin / "python3")


def test_resolve_python_falls_back_to_path_and_keeps_explicit_paths(tmp_path, monkeypatch):
    (tmp_path / "lynx-test-python").write_text("#!/bin/sh\n")
    (tmp_path / "lynx-test-python").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert resolve_python("lynx-test-python") == str(tmp_path / "lynx-test-python")
    assert resolve_python("/no/such/python") == "/no/such/python"


def test_resolve_python_reports_a_missing_interpreter(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ValidationError) as err:
        resolve_python("python-lynx-does-not-exist")
    assert err.value.field == "python_executable"


# ---------------------------------------------------------------- engine options


def test_tutorial_config_keeps_its_defaults_for_the_new_options(monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(TUTORIAL_CONFIG, env={})
    assert config.warm_start is True
    assert config.preload == ("auto",)
    assert config.warm_up == AUTO_WARM_UP and AUTO_WARM_UP.is_file()
    assert config.command is None
    assert config.log_cap_bytes == 10 * 2**20
    assert config.job_memory_limit == 0


@pytest.mark.parametrize(("value", "expected"), [("auto", AUTO_WARM_UP), ("none", None), ("", None)])
def test_warm_up_takes_auto_or_none(tmp_path, monkeypatch, value, expected):
    monkeypatch.chdir(tmp_path)
    assert load_config(None, env={"LYNX_RUNNER_WARM_UP": value}).warm_up == expected


def test_example_configs_load(monkeypatch):
    monkeypatch.chdir(REPO)
    warm = load_config(REPO / "configs" / "lynx-runner-basilisk-warm.yaml", env={})
    assert warm.warm_start and "Basilisk.simulation.spacecraft" in warm.preload
    assert (warm.working_directory / warm.warm_up).is_file()
    command = load_config(REPO / "configs" / "lynx-runner-command.yaml", env={})
    assert command.engines == ("command",)
    assert command.command.args[:2] == ("--config", "{run_config}")


def test_engine_options_from_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(write(tmp_path, """
engines: [basilisk, command]
warm_start: false
preload: [Basilisk.simulation.spacecraft, matplotlib.pyplot]
command:
  executable: ./sims/orbit
  args: ["--config", "{run_config}", "--out={output_dir}", "--seed", 7]
log_cap_bytes: 1Mi
job_memory_limit: 512Mi
"""), env={})
    assert config.engines == ("basilisk", "command")
    assert config.warm_start is False
    assert config.preload == ("Basilisk.simulation.spacecraft", "matplotlib.pyplot")
    assert config.command == CommandSpec("./sims/orbit", ("--config", "{run_config}", "--out={output_dir}", "--seed",
                                                          "7"))
    assert config.command_executable() == str(tmp_path.resolve() / "sims" / "orbit")
    assert config.log_cap_bytes == 2**20
    assert config.job_memory_limit == 512 * 2**20


def test_engine_options_from_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={
        "LYNX_RUNNER_ENGINES": "command",
        "LYNX_RUNNER_WARM_START": "no",
        "LYNX_RUNNER_PRELOAD": "numpy, matplotlib.pyplot",
        "LYNX_RUNNER_COMMAND": '{"executable": "julia", "args": ["sim.jl", "{run_config}"]}',
        "LYNX_RUNNER_LOG_CAP_BYTES": "64Ki",
        "LYNX_RUNNER_JOB_MEMORY_LIMIT": "1Gi",
    })
    assert config.warm_start is False
    assert config.preload == ("numpy", "matplotlib.pyplot")
    assert config.command == CommandSpec("julia", ("sim.jl", "{run_config}"))
    assert config.log_cap_bytes == 64 * 1024
    assert config.job_memory_limit == 2**30


def test_command_args_substitute_only_whitelisted_placeholders():
    spec = CommandSpec("/bin/sim", ("--config", "{run_config}", "x{job_id}y", "$HOME", "`id`"))
    argv = spec.argv({"run_config": "/r/c.json", "job_id": "j1"})
    assert argv == ["/bin/sim", "--config", "/r/c.json", "xj1y", "$HOME", "`id`"]


@pytest.mark.parametrize(
    ("yaml_text", "env", "field"),
    [
        ("warm_start: maybe\n", {}, "warm_start"),
        ("", {"LYNX_RUNNER_WARM_START": "2"}, "warm_start"),
        ("preload: ['os; rm -rf /']\n", {}, "preload"),
        ("preload: [../evil]\n", {}, "preload"),
        ("engines: [command]\n", {}, "command"),
        ("command: /bin/sim\n", {}, "command"),
        ("", {"LYNX_RUNNER_COMMAND": "not json"}, "command"),
        ("command: {executable: sim, shell: true}\n", {}, "command.shell"),
        ("command: {args: [x]}\n", {}, "command.executable"),
        ("command: {executable: sim, args: '--config {run_config}'}\n", {}, "command.args"),
        ("command: {executable: sim, args: [x, '{home}']}\n", {}, "command.args[1]"),
        ("command: {executable: sim, args: ['{run_config']}\n", {}, "command.args[0]"),
        ("command: {executable: sim, args: ['{__class__}']}\n", {}, "command.args[0]"),
        ("job_memory_limit: lots\n", {}, "job_memory_limit"),
        ("job_memory_limit: -1Gi\n", {}, "job_memory_limit"),
        ("", {"LYNX_RUNNER_JOB_MEMORY_LIMIT": "1 GB"}, "job_memory_limit"),
        ("log_cap_bytes: 10\n", {}, "log_cap_bytes"),
        ("engines: [basilisk, julia]\n", {}, "engines"),
        ("warm_up: no/such/warmup.py\n", {}, "warm_up"),
        ("warm_up: [a, b]\n", {}, "warm_up"),
    ],
)
def test_bad_engine_options_name_the_field(tmp_path, monkeypatch, yaml_text, env, field):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError) as err:
        load_config(write(tmp_path, yaml_text), env=env)
    assert err.value.field == field
    assert str(err.value).startswith(field + " ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1G", 10**9), ("1e9", 10**9), ("1.5Gi", 3 * 2**29),
     ("128974848", 128974848), (268435456, 2**28), ("", 0), ("100k", 10**5), ("64Ki", 65536)],
)
def test_memory_quantities_use_kubernetes_notation(text, expected):
    assert parse_memory(text) == expected


def test_preload_none_turns_auto_off(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(None, env={"LYNX_RUNNER_PRELOAD": "none"}).preload == ()
    assert load_config(write(tmp_path, "preload: []\n"), env={}).preload == ()


def test_auto_warm_up_leaves_no_progress_bar_lock_for_jobs_to_share():
    """A semaphore created in the fork server is shared by every forked job: a job killed while
    holding tqdm's lock would block the next job's progress bar forever."""
    probe = (
        "import runpy, sys, threading\n"
        "from Basilisk.utilities import SimulationBaseClass\n"
        "import matplotlib.pyplot\n"
        f"runpy.run_path({str(AUTO_WARM_UP)!r}, run_name='__lynx_warm_up__')\n"
        "import tqdm.std as t\n"
        "assert 'tqdm.std' in sys.modules, 'the warm-up did not run a simulation'\n"
        "assert '_lock' not in vars(t.tqdm) and 'mp_lock' not in vars(t.TqdmDefaultWriteLock)\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]

"""The ways bench_runner.py runs a study, 2 runs at a time: each returns its wall-clock seconds.

A *shape* is a scenario file plus the body every in-process way calls per run:

* tutorial: scenarios/aerospace/python/scenario_basic_orbit_lynx.py (top-level imports, ~0.9 s of
  its own CPU per run: telemetry per step, a CSV and a plot);
* light:    bench/scenario_light_orbit.py (imports inside main(), ~0.4 s of simulation, no plot or telemetry).
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "scenarios/aerospace/configs/basic_orbit_tutorial.yaml"
PARALLEL = 2
SPAWN = multiprocessing.get_context("spawn")  # the in-process ways start from clean interpreters


@dataclass(frozen=True)
class Shape:
    name: str
    scenario: Path
    title: str


SHAPES = {
    "tutorial": Shape("tutorial", REPO / "scenarios/aerospace/python/scenario_basic_orbit_lynx.py",
                      "Basic Orbit tutorial (top-level imports, telemetry, CSV and plot per run)"),
    "light": Shape("light", REPO / "bench/scenario_light_orbit.py",
                   "light Basilisk scenario (imports inside main(), one summary.json per run)"),
}


def sample_parameters(runs: int, seed: int = 42) -> list[dict[str, float]]:
    """The study's uniform dispersions, one dict per run (same ranges as the tutorial YAML)."""
    study = yaml.safe_load(STUDY.read_text())
    rng = np.random.default_rng(seed)
    return [{name: float(rng.uniform(spec["distribution"]["min"], spec["distribution"]["max"]))
             for name, spec in study["dispersions"].items()} for _ in range(runs)]


_MODULES: dict[str, object] = {}


def _module(shape: str):
    """The shape's scenario file, imported once per process (as the controller's user script would)."""
    if shape not in _MODULES:
        path = SHAPES[shape].scenario
        spec = importlib.util.spec_from_file_location(f"bench_scenario_{shape}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _MODULES[shape] = module
    return _MODULES[shape]


def run_body(shape: str, index: int, parameters: dict[str, float], out: Path) -> None:
    """One run of the scenario's own code, in this process: what every orchestrator calls."""
    module = _module(shape)
    if shape == "tutorial":
        config = module.RunConfig(run_id=index, parameters=module.OrbitParameters.from_mapping(parameters),
                                  metadata={})
        module.run_scenario(config, out, time.perf_counter())
    else:
        module.run(parameters, str(out))


# ---------------------------------------------------------------- bare subprocess loop


def bench_bare(shape: str, runs: int, work: Path) -> float:
    """Seconds for `runs` fresh `python scenario.py` processes, PARALLEL at a time."""
    params = sample_parameters(runs)
    pending = list(range(runs))
    running: list[subprocess.Popen] = []
    failures = 0
    started = time.perf_counter()
    while pending or running:
        while pending and len(running) < PARALLEL:
            i = pending.pop(0)
            config = work / f"run{i}.json"
            config.write_text(json.dumps({"run_id": i, "parameters": params[i], "metadata": {}}))
            env = {**os.environ, "TETRYX_RUN_CONFIG": str(config), "TETRYX_OUTPUT_DIR": str(work / f"run{i}")}
            env.pop("TETRYX_TELEMETRY_URL", None)
            (work / f"run{i}").mkdir()
            running.append(subprocess.Popen([sys.executable, str(SHAPES[shape].scenario)], env=env, cwd=REPO,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.005)
        for proc in list(running):
            if proc.poll() is not None:
                failures += proc.returncode != 0
                running.remove(proc)
    elapsed = time.perf_counter() - started
    if failures:
        print(f"  bare: {failures} runs failed")
    return elapsed


# ---------------------------------------------------------------- Basilisk's Monte Carlo controller

_JOB: dict = {}


class _Case:
    """The controller's 'simulation': the scenario builds the real one in the execution function."""


def _create_case() -> _Case:
    return _Case()


def _execute_case(case: _Case, filename: str) -> None:
    index = int(filename.rsplit("run", 1)[1])
    run_body(_JOB["shape"], index, _JOB["params"][index], Path(_JOB["archive"]) / f"run{index}")


def _controller_main(shape: str, runs: int, work: str, conn) -> None:
    """In a clean interpreter: the user's script imports its scenario, then runs the controller."""
    from Basilisk.utilities.MonteCarlo.Controller import Controller

    multiprocessing.set_start_method("fork", force=True)  # Linux's default in a user's script
    _module(shape)  # the tutorial imports Basilisk here (workers fork from it); light imports nothing yet
    _JOB.update(shape=shape, params=sample_parameters(runs), archive=str(Path(work) / "mc"))
    controller = Controller()
    controller.setShowProgressBar(False)
    controller.setSimulationFunction(_create_case)
    controller.setExecutionFunction(_execute_case)
    controller.setExecutionCount(runs)
    controller.setThreadCount(PARALLEL)
    controller.setVerbose(False)
    controller.setArchiveDir(_JOB["archive"])
    controller.setShouldArchiveParameters(False)
    started = time.perf_counter()
    failed = controller.executeSimulations()
    conn.send((time.perf_counter() - started, len(failed or [])))


def bench_controller(shape: str, runs: int, work: Path) -> float:
    """Seconds for `runs` runs through Basilisk's MonteCarlo Controller with PARALLEL processes."""
    return _in_clean_interpreter("controller", _controller_main, shape, runs, work)


def _in_clean_interpreter(way: str, main, shape: str, runs: int, work: Path) -> float:
    """Run `main(shape, runs, work, conn)` in a spawned interpreter; the seconds it sends back."""
    parent, child = SPAWN.Pipe()
    proc = SPAWN.Process(target=main, args=(shape, runs, str(work), child))
    proc.start()
    elapsed, failed = parent.recv()
    proc.join()
    if failed:
        print(f"  {way}: {failed} runs failed")
    return elapsed


# ---------------------------------------------------------------- the physical limit


def _limit_worker(shape: str, conn) -> None:
    """A persistent worker: warm up with one run (not timed), then run bodies until told to stop."""
    with tempfile.TemporaryDirectory() as scratch:
        run_body(shape, 0, sample_parameters(1, seed=7)[0], Path(scratch) / "warm-up")
    conn.send("ready")
    while (job := conn.recv()) is not None:
        index, parameters, out = job
        run_body(shape, index, parameters, Path(out))
        conn.send(index)


def bench_limit(shape: str, runs: int, work: Path) -> float:
    """Seconds for `runs` calls of the scenario body in PARALLEL persistent, pre-warmed workers:
    no process per run, no isolation, no bookkeeping. No orchestrator that isolates runs beats it."""
    params = sample_parameters(runs)
    workers = []
    for _ in range(PARALLEL):
        parent, child = SPAWN.Pipe()
        proc = SPAWN.Process(target=_limit_worker, args=(shape, child), daemon=True)
        proc.start()
        workers.append((proc, parent))
    for _, conn in workers:
        assert conn.recv() == "ready"
    pending = list(range(runs))
    started = time.perf_counter()
    for _, conn in workers:
        if pending:
            i = pending.pop(0)
            conn.send((i, params[i], str(work / f"run{i}")))
    done = 0
    while done < runs:
        for conn in wait([c for _, c in workers]):
            conn.recv()
            done += 1
            if pending:
                i = pending.pop(0)
                conn.send((i, params[i], str(work / f"run{i}")))
    elapsed = time.perf_counter() - started
    for proc, conn in workers:
        conn.send(None)
        proc.join(10)
    return elapsed


# ---------------------------------------------------------------- the limit with a process per run

WARM_UP_AUTO = REPO / "services/runner/lynx_runner/warm_up_auto.py"


def _fork_limit_main(shape: str, runs: int, work: str, conn) -> None:
    """A warm parent forks one child per run, PARALLEL at a time; each child calls the body and exits."""
    import gc
    import runpy

    with tempfile.TemporaryDirectory() as scratch:
        run_body(shape, 0, sample_parameters(1, seed=7)[0], Path(scratch) / "warm-up")
    runpy.run_path(str(WARM_UP_AUTO), run_name="__lynx_warm_up__")  # the fork server's warm-up: no threads left
    gc.collect()
    gc.freeze()
    params = sample_parameters(runs)
    pending = list(range(runs))
    running = 0
    failures = 0
    started = time.perf_counter()
    while pending or running:
        while pending and running < PARALLEL:
            i = pending.pop(0)
            if os.fork() == 0:
                code = 0
                try:
                    run_body(shape, i, params[i], Path(work) / f"run{i}")
                except BaseException:  # noqa: BLE001 - counted by the parent
                    code = 1
                finally:
                    sys.stdout.flush()
                    os._exit(code)
            running += 1
        _, status = os.wait()
        running -= 1
        failures += status != 0
    conn.send((time.perf_counter() - started, failures))


def bench_fork_limit(shape: str, runs: int, work: Path) -> float:
    """Seconds for `runs` runs, each the scenario body in its own child forked from one warm process
    (warmed by a run of the body, gc-frozen), PARALLEL at a time, no orchestration: the limit of any
    orchestrator that isolates every run in a process of its own."""
    return _in_clean_interpreter("fork limit", _fork_limit_main, shape, runs, work)

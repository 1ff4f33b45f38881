"""Runner throughput on the Basic Orbit tutorial study, 2 runs at a time, four ways, in one process run.

    .venv/bin/python bench/bench_runner.py [--runs 100] [--only bare,controller,cold,warm]

* bare:       a loop that launches the scenario with subprocess directly, 2 at a time: the floor
              for a fresh process per job (no scheduler, no telemetry endpoint, no results).
* controller: Basilisk's own Monte Carlo controller (Basilisk.utilities.MonteCarlo.Controller),
              2 worker processes, the scenario's build/run/artifact code in its execution function.
* cold:       the whole Lynx stack (sampler, scheduler, telemetry-ingest, gateway, one runner with
              max_concurrent_jobs 2), warm_start false: one fresh interpreter per job.
* default:    the same with the runner defaults: warm_start true, preload auto (the entrypoint's
              top-level imports), warm_up auto (the built-in warm-up of what was preloaded).
* warm:       warm_start true with an explicit preload list and warm_up auto
              (configs/lynx-runner-basilisk-warm.yaml).

Every way runs the same scenario code and writes the same three artifacts per run. Prints runs/s
for each and ratios against the baselines measured in the same invocation.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios/aerospace/python/scenario_basic_orbit_lynx.py"
STUDY = REPO / "scenarios/aerospace/configs/basic_orbit_tutorial.yaml"
PARALLEL = 2
PRELOAD = [
    "lynx_telemetry_client",
    "numpy",
    "matplotlib.pyplot",
    "Basilisk.simulation.spacecraft",
    "Basilisk.utilities.SimulationBaseClass",
    "Basilisk.utilities.macros",
    "Basilisk.utilities.orbitalMotion",
    "Basilisk.utilities.simIncludeGravBody",
]


def sample_parameters(runs: int, seed: int = 42) -> list[dict[str, float]]:
    """The study's uniform dispersions, one dict per run (same ranges as the tutorial YAML)."""
    study = yaml.safe_load(STUDY.read_text())
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(runs):
        rows.append({name: float(rng.uniform(spec["distribution"]["min"], spec["distribution"]["max"]))
                     for name, spec in study["dispersions"].items()})
    return rows


# ---------------------------------------------------------------- bare subprocess loop


def bench_bare(runs: int, work: Path) -> float:
    """Seconds for `runs` fresh `python scenario.py` processes, PARALLEL at a time."""
    params = sample_parameters(runs)
    pending = list(range(runs))
    running: list[tuple[int, subprocess.Popen]] = []
    failures = 0
    started = time.perf_counter()
    while pending or running:
        while pending and len(running) < PARALLEL:
            i = pending.pop(0)
            out = work / f"run{i}"
            out.mkdir(parents=True)
            config = work / f"run{i}.json"
            config.write_text(json.dumps({"run_id": i, "parameters": params[i], "metadata": {}}))
            env = {**os.environ, "TETRYX_RUN_CONFIG": str(config), "TETRYX_OUTPUT_DIR": str(out)}
            env.pop("TETRYX_TELEMETRY_URL", None)
            proc = subprocess.Popen([sys.executable, str(SCENARIO)], env=env, cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            running.append((i, proc))
        time.sleep(0.005)
        for item in list(running):
            if item[1].poll() is not None:
                failures += item[1].returncode != 0
                running.remove(item)
    elapsed = time.perf_counter() - started
    if failures:
        print(f"  bare: {failures} runs failed")
    return elapsed


# ---------------------------------------------------------------- Basilisk's Monte Carlo controller

_SCENARIO_MODULE = None
_PARAMS: list[dict[str, float]] = []
_ARCHIVE = ""


def _scenario():
    global _SCENARIO_MODULE
    if _SCENARIO_MODULE is None:
        spec = importlib.util.spec_from_file_location("scenario_basic_orbit_lynx", SCENARIO)
        _SCENARIO_MODULE = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = _SCENARIO_MODULE
        spec.loader.exec_module(_SCENARIO_MODULE)
    return _SCENARIO_MODULE


class _Case:
    """The controller's 'simulation': the scenario builds the real one in the execution function."""


def _create_case() -> _Case:
    return _Case()


def _execute_case(case: _Case, filename: str) -> None:
    """Build, run and write the artifacts of one run, as the Lynx scenario does."""
    scenario = _scenario()
    index = int(filename.rsplit("run", 1)[1])
    config = scenario.RunConfig(run_id=index, parameters=scenario.OrbitParameters.from_mapping(_PARAMS[index]),
                                metadata={})
    scenario.run_scenario(config, Path(_ARCHIVE) / f"run{index}", time.perf_counter())


def bench_controller(runs: int, work: Path) -> float:
    """Seconds for `runs` runs through Basilisk's MonteCarlo Controller with PARALLEL processes."""
    global _PARAMS, _ARCHIVE
    from Basilisk.utilities.MonteCarlo.Controller import Controller

    _scenario()  # imports Basilisk and matplotlib once in the parent; workers fork from it
    _PARAMS = sample_parameters(runs)
    _ARCHIVE = str(work / "mc")
    controller = Controller()
    controller.setShowProgressBar(False)
    controller.setSimulationFunction(_create_case)
    controller.setExecutionFunction(_execute_case)
    controller.setExecutionCount(runs)
    controller.setThreadCount(PARALLEL)
    controller.setVerbose(False)
    controller.setArchiveDir(_ARCHIVE)
    controller.setShouldArchiveParameters(False)
    started = time.perf_counter()
    failed = controller.executeSimulations()
    elapsed = time.perf_counter() - started
    if failed:
        print(f"  controller: {len(failed)} runs failed")
    return elapsed


# ---------------------------------------------------------------- the Lynx stack


def runner_config(path: Path, output_root: Path, mode: str) -> Path:
    """A tutorial runner config with max_concurrent_jobs 2: cold, default (auto preload) or warm (tuned)."""
    config = {
        "engines": ["basilisk"],
        "capabilities": ["basilisk", "orbit", "aerospace"],
        "working_directory": str(REPO),
        "output_root": str(output_root),
        "python_executable": sys.executable,
        "basilisk_entrypoint": str(SCENARIO.relative_to(REPO)),
        "max_concurrent_jobs": PARALLEL,
        "heartbeat_interval_secs": 2,
        "warm_start": mode != "cold",
    }
    if mode == "warm":
        config["preload"] = PRELOAD
        config["warm_up"] = "auto"
    path.write_text(yaml.safe_dump(config))
    return path


def bench_lynx(runs: int, work: Path, mode: str) -> float:
    """Seconds from submitting the tutorial study (runs_override=runs) to the batch's end."""
    from lynx.scheduler.v1 import scheduler_service_pb2 as pb
    from lynx_cli.api import Api
    from lynx_cli.stack import Ports, Stack
    from lynx_common.names import BATCH_STATUS

    terminal = {BATCH_STATUS.name(s) for s in (pb.BATCH_STATUS_COMPLETED, pb.BATCH_STATUS_FAILED,
                                               pb.BATCH_STATUS_CANCELLED)}
    config = runner_config(work / "runner.yaml", work / "runs", mode)
    with Stack(work / "data", Ports(0, 0, 0, 0), runners=1, runner_config=config) as stack:
        api = Api(stack.ports.gateway_url)
        body = {"name": f"bench-{mode}", "runs_override": runs,
                "config": yaml.safe_load(STUDY.read_text())}
        started = time.perf_counter()
        batch_id = api.post("/jobs", body)["batch_id"]
        while True:
            status = api.get(f"/batches/{batch_id}")
            if status["batch"]["status"] in terminal:
                break
            stack.watch()
            time.sleep(0.25)  # each poll costs the gateway and scheduler CPU that the runs need
        elapsed = time.perf_counter() - started
        counts = status["jobs_by_status"]
        if status["batch"]["status"] != BATCH_STATUS.name(pb.BATCH_STATUS_COMPLETED):
            print(f"  lynx {mode}: batch {status['batch']['status']}: {counts}")
        return elapsed


# ---------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--only", default="bare,controller,cold,default,warm", help="comma-separated subset")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    chosen = [w.strip() for w in args.only.split(",") if w.strip()]
    root = Path(tempfile.mkdtemp(prefix="lynx-bench-runner-"))
    ways = {
        "bare": ("bare subprocess loop (fresh process per run)", lambda w: bench_bare(args.runs, w)),
        "controller": ("Basilisk MonteCarlo Controller (2 workers)", lambda w: bench_controller(args.runs, w)),
        "cold": ("Lynx stack, warm_start false", lambda w: bench_lynx(args.runs, w, "cold")),
        "default": ("Lynx stack, defaults (warm, preload+warm_up auto)", lambda w: bench_lynx(args.runs, w, "default")),
        "warm": ("Lynx stack, warm + preload list + warm_up", lambda w: bench_lynx(args.runs, w, "warm")),
    }
    rates: dict[str, float] = {}
    print(f"Basic Orbit tutorial study, {args.runs} runs, {PARALLEL} at a time, {os.cpu_count()} CPUs")
    try:
        for key in chosen:
            label, fn = ways[key]
            work = root / key
            work.mkdir()
            seconds = fn(work)
            rates[key] = args.runs / seconds
            print(f"  {label:<46} {seconds:7.2f} s  {rates[key]:6.2f} runs/s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("ratios:")
    for key in ("cold", "default", "warm", "controller"):
        for base in ("bare", "controller", "cold"):
            if key in rates and base in rates and key != base:
                print(f"  {key:>10} / {base:<10} {rates[key] / rates[base]:6.2f}x")


if __name__ == "__main__":
    main()

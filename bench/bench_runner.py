"""Runner throughput, 2 runs at a time, two scenario shapes, every way in one invocation.

    .venv/bin/python bench/bench_runner.py [--runs 100] [--shapes tutorial,light]
                                           [--only bare,controller,limit,forklimit,cold,default,warm,noupload,noahead]
                                           [--rounds N]

Shapes (runner_ways.SHAPES): the Basic Orbit tutorial scenario (top-level imports, about 0.3 s of its own
CPU per run) and a light Basilisk scenario whose imports are inside main() (bench/scenario_light_orbit.py,
a few ms of simulation: what the orchestrator costs dominates). Ways:

* bare:       a loop that launches the scenario with subprocess, 2 at a time: the floor for a
              fresh process per run (no scheduler, no telemetry endpoint, no results).
* controller: Basilisk's Monte Carlo controller (Basilisk.utilities.MonteCarlo.Controller), 2 worker
              processes, the scenario's body in its execution function, run from a clean interpreter.
* limit:      the same body called N times in 2 persistent, pre-warmed worker processes (no process
              per run, no isolation): the physical limit for any orchestrator.
* forklimit:  the same body, each run in a child forked from one warm, gc-frozen process (warmed by
              a run of the body and the runner's own warm-up), 2 at a time, nothing else: the limit
              for any orchestrator that gives every run a process of its own (what a fork costs:
              copy-on-write faults, the child's exit), so `limit / forklimit` is isolation's price.
* cold:       the whole Lynx stack (sampler, scheduler, telemetry-ingest, gateway, one runner with
              max_concurrent_jobs 2), warm_start false: one fresh interpreter per job.
* default:    the same with the runner's defaults: warm_start true, preload [auto] (top-level imports
              plus what jobs import, learned), warm_up auto.
* noupload:   the defaults with upload_artifacts false (output files stay on the runner host): the
              baseline of what uploading every job's files to the artifact store costs.
* noahead:    the defaults with lease_ahead_below_seconds 0 (no lease held ahead: after each job
              its slot waits for the upload, the report and the next lease): the baseline of what
              leasing ahead gains.
* warm:       tutorial only: warm_start true with an explicit preload list
              (configs/lynx-runner-basilisk-warm.yaml).

For each Lynx way it also prints the CPU time of Lynx's own processes (scheduler, gateway, ingest,
sampler, runner; from /proc/<pid>/stat) over the study, as a share of the machine. Ratios are
against baselines measured in the same invocation; the issue's targets are printed next to them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from runner_ways import PARALLEL, REPO, SHAPES, STUDY, bench_bare, bench_controller, bench_fork_limit, bench_limit

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
# (shape, way, baseline, minimum ratio) from issue 12
TARGETS = [("light", "default", "controller", 1.3), ("light", "default", "limit", 0.8),
           ("tutorial", "default", "controller", 1.0), ("tutorial", "default", "limit", 0.9),
           ("tutorial", "cold", "bare", 0.95), ("light", "cold", "bare", 0.95),
           ("tutorial", "default", "noupload", 0.95)]  # issue 10: uploading artifacts costs at most 5 %
CPU_TARGET = 0.10
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children), from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def runner_config(path: Path, output_root: Path, mode: str, scenario: Path) -> Path:
    """A runner config with max_concurrent_jobs 2: cold, default (nothing about preloads) or warm (tuned)."""
    config = {
        "engines": ["basilisk"],
        "capabilities": ["basilisk", "orbit", "aerospace"],
        "working_directory": str(REPO),
        "output_root": str(output_root),
        "python_executable": sys.executable,
        "basilisk_entrypoint": str(scenario.relative_to(REPO)),
        "max_concurrent_jobs": PARALLEL,
        "heartbeat_interval_secs": 2,
        "warm_start": mode != "cold",
    }
    if mode == "noupload":  # the defaults, but output files stay on the runner host
        config["upload_artifacts"] = False
    if mode == "noahead":  # the defaults, but no lease held ahead: each slot waits for the next lease
        config["lease_ahead_below_seconds"] = 0
    if mode == "warm":
        config["preload"] = PRELOAD
        config["warm_up"] = "auto"
    path.write_text(yaml.safe_dump(config))
    return path


def bench_lynx(shape: str, runs: int, work: Path, mode: str) -> tuple[float, dict[str, float]]:
    """Seconds from submitting the study (runs_override=runs) to the batch's end, and the CPU seconds
    each Lynx process used in that time."""
    from lynx.scheduler.v1 import scheduler_service_pb2 as pb
    from lynx_cli.api import Api
    from lynx_cli.stack import Ports, Stack
    from lynx_common.names import BATCH_STATUS

    terminal = {BATCH_STATUS.name(s) for s in (pb.BATCH_STATUS_COMPLETED, pb.BATCH_STATUS_FAILED,
                                               pb.BATCH_STATUS_CANCELLED)}
    config = runner_config(work / "runner.yaml", work / "runs", mode, SHAPES[shape].scenario)
    with Stack(work / "data", Ports(0, 0, 0, 0), runners=1, runner_config=config) as stack:
        api = Api(stack.ports.gateway_url)
        if mode != "cold":  # like a runner that has been up for a while: its fork server is ready
            log = stack.processes["local-runner-01"].log
            deadline = time.monotonic() + 120
            while "fork server pid" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        pids = {name: process.pid for name, process in stack.processes.items()}
        pids["fork server"] = next((pid for pid in children(stack.processes["local-runner-01"].pid)
                                    if b"forkserver.py" in cmdline(pid)), 0)
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        body = {"name": f"bench-{shape}-{mode}", "runs_override": runs, "config": yaml.safe_load(STUDY.read_text())}
        started = time.perf_counter()
        batch_id = api.post("/jobs", body)["batch_id"]
        while True:
            status = api.get(f"/batches/{batch_id}")
            if status["batch"]["status"] in terminal:
                break
            stack.watch()
            time.sleep(0.25)  # each poll costs the gateway and scheduler CPU that the runs need
        elapsed = time.perf_counter() - started
        used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items() if pid}
        if status["batch"]["status"] != BATCH_STATUS.name(pb.BATCH_STATUS_COMPLETED):
            print(f"  lynx {mode}: batch {status['batch']['status']}: {status['jobs_by_status']}")
        return elapsed, used


def cmdline(pid: int) -> bytes:
    """The process's command line (NUL-separated), b"" when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def print_cpu(used: dict[str, float], elapsed: float) -> float:
    """One line of per-process CPU; returns Lynx's own share of the machine (fork server excluded)."""
    machine = elapsed * (os.cpu_count() or 1)
    own = {("runner" if name.startswith("local-runner") else name): s for name, s in used.items()
           if name != "fork server"}
    share = sum(own.values()) / machine
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in own.items())
    fork = used.get("fork server", 0.0)
    print(f"      Lynx's own CPU: {share:6.1%} of the machine ({parts}); fork server {fork:.1f} s "
          f"({fork / machine:.1%}: the scenario's imports and warm-up, paid once)")
    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs per way (100 for the documented figures)")
    parser.add_argument("--shapes", default="tutorial,light", help="comma-separated: tutorial, light")
    parser.add_argument("--only", default="bare,controller,limit,forklimit,cold,default,noupload,warm",
                        help="comma-separated ways")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every way this many times, in alternating order (forward, then backward, ...), "
                             "and take each way's median: this machine's speed drifts by 10-20 %% over minutes, "
                             "which one pass in a fixed order books against the ways that happen to run later")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    chosen = [w.strip() for w in args.only.split(",") if w.strip()]
    labels = {
        "bare": "bare subprocess loop (fresh process per run)",
        "controller": "Basilisk MonteCarlo Controller (2 workers)",
        "limit": "limit: body in 2 persistent warm workers",
        "forklimit": "fork limit: body in a fresh fork per run",
        "cold": "Lynx stack, warm_start false",
        "default": "Lynx stack, defaults",
        "warm": "Lynx stack, warm + explicit preload list",
        "noupload": "Lynx stack, defaults, no artifact upload",
        "noahead": "Lynx stack, defaults, no lease ahead",
    }
    root = Path(tempfile.mkdtemp(prefix="lynx-bench-runner-"))
    rates: dict[tuple[str, str], float] = {}
    shares: dict[tuple[str, str], float] = {}
    times: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    print(f"{args.runs} runs per way, {PARALLEL} at a time, {os.cpu_count()} CPUs, {args.rounds} round(s)")
    try:
        for shape in shapes:
            print(f"{shape}: {SHAPES[shape].title}")
            ways = [w for w in chosen if w != "warm" or shape == "tutorial"]
            for round_ in range(args.rounds):
                if args.rounds > 1:
                    print(f"  round {round_ + 1}")
                for way in ways if round_ % 2 == 0 else ways[::-1]:
                    work = root / shape / way / str(round_)
                    work.mkdir(parents=True)
                    used = None
                    if way in ("cold", "default", "warm", "noupload", "noahead"):
                        seconds, used = bench_lynx(shape, args.runs, work, way)
                    else:
                        seconds = {"bare": bench_bare, "controller": bench_controller, "limit": bench_limit,
                                   "forklimit": bench_fork_limit}[way](shape, args.runs, work)
                    times.setdefault((shape, way), []).append(seconds)
                    print(f"  {labels[way]:<46} {seconds:7.2f} s  {args.runs / seconds:6.2f} runs/s", flush=True)
                    if used is not None:
                        cpu.setdefault((shape, way), []).append(print_cpu(used, seconds))
            if args.rounds > 1:
                print(f"  median of {args.rounds} rounds")
            for way in ways:
                seconds = statistics.median(times[shape, way])
                rates[shape, way] = args.runs / seconds
                if args.rounds > 1:
                    spread = ", ".join(f"{t:.2f}" for t in times[shape, way])
                    print(f"  {labels[way]:<46} {seconds:7.2f} s  {rates[shape, way]:6.2f} runs/s   ({spread})")
                if (shape, way) in cpu:
                    shares[shape, way] = statistics.median(cpu[shape, way])
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("ratios (same invocation" + (f", medians of {args.rounds} rounds" if args.rounds > 1 else "") + "):")
    for shape in shapes:
        for way in ("cold", "default", "warm", "controller", "forklimit"):
            for base in ("bare", "controller", "limit", "forklimit", "cold", "noupload", "noahead"):
                if (shape, way) in rates and (shape, base) in rates and way != base:
                    target = next((t for s, w, b, t in TARGETS if (s, w, b) == (shape, way, base)), None)
                    note = "" if target is None else f"   target >= {target:.2f}x"
                    print(f"  {shape:>8} {way:>10} / {base:<10} {rates[shape, way] / rates[shape, base]:6.2f}x{note}")
    if ("tutorial", "default") in shares:
        print(f"  Lynx's own CPU during the tutorial study with the defaults: {shares['tutorial', 'default']:.1%} "
              f"of the machine   target <= {CPU_TARGET:.0%}")


if __name__ == "__main__":
    main()

"""Lynx against RocketPy's own Monte Carlo class on the same rocket study, 2 runs at a time, in one process run.

    .venv/bin/python bench/bench_rocketpy.py [--runs 8]

* rocketpy: rocketpy.simulation.MonteCarlo, parallel with 2 workers, over StochasticRocket /
            StochasticSolidMotor / StochasticFlight built from the scenario's own rocket,
            motor and environment (scenarios/rocketry/python/rocket_flight_lynx.py).
* lynx:     the whole Lynx stack (sampler, scheduler, telemetry-ingest, gateway, one runner of
            configs/lynx-runner-rocketpy.yaml with max_concurrent_jobs 2, warm fork server), the
            same scenario as a batch; timed from submission (after the fork server preloaded
            rocketpy) to the batch's end.

Both disperse the same inputs with the same distributions: total impulse (normal, 3 %), dry mass
(normal, 0.25 kg), rail inclination (normal, 1 deg) and heading (normal, 2 deg); the wind is the
scenario's default profile in both. Lynx does more per run (it streams every 0.1 s of flight as
telemetry, writes trajectory.csv and uploads the artifacts). Prints runs/s for each, the ratio,
and the mean apogee of each as a check that both flew the same rocket.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scenarios/rocketry/python"))
import rocket_flight_lynx as scenario  # noqa: E402

PARALLEL = 2
IMPULSE_STD, MASS_STD, INCLINATION_STD, HEADING_STD = 0.03, 0.25, 1.0, 2.0


def bench_rocketpy(runs: int, work: Path) -> tuple[float, float]:
    """(seconds, mean apogee above ground) of RocketPy's MonteCarlo over the same dispersions."""
    from rocketpy.rocket.aero_surface import NoseCone, Tail, TrapezoidalFins
    from rocketpy.simulation import MonteCarlo
    from rocketpy.stochastic import (
        StochasticEnvironment,
        StochasticFlight,
        StochasticNoseCone,
        StochasticParachute,
        StochasticRocket,
        StochasticSolidMotor,
        StochasticTail,
        StochasticTrapezoidalFins,
    )

    p = dict(scenario.DEFAULTS)
    env, rocket = scenario.environment(p), scenario.rocket(p)
    flight = scenario.fly(p, env, rocket)
    impulse = rocket.motor.total_impulse
    stochastic = StochasticRocket(rocket=rocket, mass=(p["dry_mass_kg"], MASS_STD))
    # A bare number is a standard deviation to RocketPy; (value, 0) keeps a position fixed.
    stochastic.add_motor(
        StochasticSolidMotor(solid_motor=rocket.motor, total_impulse=(impulse, IMPULSE_STD * impulse)),
        position=(-1.255, 0.0),
    )
    add = {
        NoseCone: (stochastic.add_nose, StochasticNoseCone),
        TrapezoidalFins: (stochastic.add_trapezoidal_fins, StochasticTrapezoidalFins),
        Tail: (stochastic.add_tail, StochasticTail),
    }
    for surface, position in rocket.aerodynamic_surfaces:
        method, wrapper = add[type(surface)]
        method(wrapper(surface), position=(position[2], 0.0))
    for chute in rocket.parachutes:
        stochastic.add_parachute(StochasticParachute(chute))
    monte_carlo = MonteCarlo(
        filename=str(work / "rocketpy"),
        environment=StochasticEnvironment(env),
        rocket=stochastic,
        flight=StochasticFlight(
            flight, inclination=(p["inclination_deg"], INCLINATION_STD), heading=(p["heading_deg"], HEADING_STD)
        ),
    )
    started = time.perf_counter()
    monte_carlo.simulate(number_of_simulations=runs, append=False, parallel=True, n_workers=PARALLEL)
    elapsed = time.perf_counter() - started
    return elapsed, float(np.mean(monte_carlo.results["apogee"]) - env.elevation)


def lynx_study(runs: int) -> dict:
    """The repository's RocketPy study with the benchmark's dispersions (wind fixed, no early termination)."""
    config = yaml.safe_load((REPO / "scenarios/rocketry/configs/rocket_flight.yaml").read_text())
    p = scenario.DEFAULTS
    config["monte_carlo"] = {"runs": runs, "sampling_method": "random", "seed": 1}
    config["dispersions"] = {
        "impulse_scale": {"distribution": {"type": "normal", "mean": 1.0, "std": IMPULSE_STD}},
        "dry_mass_kg": {"distribution": {"type": "normal", "mean": p["dry_mass_kg"], "std": MASS_STD}},
        "inclination_deg": {"distribution": {"type": "normal", "mean": p["inclination_deg"], "std": INCLINATION_STD}},
        "heading_deg": {"distribution": {"type": "normal", "mean": p["heading_deg"], "std": HEADING_STD}},
    }
    config["early_termination"] = {"enabled": False}
    config["compute"]["max_parallel_jobs"] = PARALLEL
    return config


def bench_lynx(runs: int, work: Path) -> tuple[float, float]:
    """(seconds from submission to the batch's end, mean apogee above ground) on a whole Lynx stack."""
    from lynx_cli.api import Api
    from lynx_cli.stack import Ports, Runner, Stack, log_says, wait_until

    runner = Runner(
        "rocketpy-runner-01",
        config=REPO / "configs/lynx-runner-rocketpy.yaml",
        env={
            "LYNX_RUNNER_MAX_CONCURRENT_JOBS": str(PARALLEL),
            "LYNX_RUNNER_OUTPUT_ROOT": str(work / "runs"),
            "LYNX_RUNNER_PYTHON_EXECUTABLE": sys.executable,
        },
    )
    with Stack(work / "data", Ports(0, 0, 0, 0), runners=[runner], cwd=REPO) as stack:
        log = stack.logs / "rocketpy-runner-01.log"
        wait_until(
            log_says(log, "fork server pid"), "the fork server preloading rocketpy", 120, stack.processes.values()
        )
        api = Api(stack.ports.gateway_url)
        started = time.perf_counter()
        batch_id = api.post("/jobs", {"name": "bench-rocketpy", "config": lynx_study(runs)})["batch_id"]
        while (status := api.get(f"/batches/{batch_id}"))["batch"]["status"] not in (
            "Completed",
            "Failed",
            "Cancelled",
        ):
            stack.watch()
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        if status["batch"]["status"] != "Completed":
            print(f"  lynx: batch {status['batch']['status']}: {status['jobs_by_status']}")
        apogees = [r["outputs"]["apogee_m"] for r in api.get(f"/batches/{batch_id}/results") if r["success"]]
        return elapsed, float(np.mean(apogees)) if apogees else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    print(f"RocketPy flight study, {args.runs} runs, {PARALLEL} at a time, {os.cpu_count()} CPUs")
    rates, apogees = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-rocketpy-") as tmp:
        for key, bench in (("rocketpy", bench_rocketpy), ("lynx", bench_lynx)):
            work = Path(tmp) / key
            work.mkdir()
            seconds, apogees[key] = bench(args.runs, work)
            rates[key] = args.runs / seconds
            print(
                f"  {key:<9} {seconds:7.2f} s  {rates[key]:6.3f} runs/s  mean apogee {apogees[key]:7.1f} m", flush=True
            )
    print(f"ratio: lynx / rocketpy {rates['lynx'] / rates['rocketpy']:.2f}x runs/s")


if __name__ == "__main__":
    main()

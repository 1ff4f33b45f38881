"""Basic Earth orbit scenario for Lynx Monte Carlo studies.

Reads the run config named by ``TETRYX_RUN_CONFIG``, builds a headless
Basilisk simulation of a spacecraft orbiting a point-mass Earth, steps it in
10-second increments and streams scalar orbit telemetry after every step
(through ``lynx_telemetry_client``, which reads ``TETRYX_TELEMETRY_URL`` and
no-ops when it is unset). Before exiting it writes ``summary.json``,
``trajectory.csv`` and ``orbit_position.png`` to ``TETRYX_OUTPUT_DIR``.

Exit status: 0 on success, 2 when the environment, run config or parameters
are invalid, 1 on any other failure.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from Basilisk.simulation import spacecraft  # noqa: E402
from Basilisk.utilities import (  # noqa: E402
    SimulationBaseClass,
    macros,
    orbitalMotion,
    simIncludeGravBody,
)

from lynx_telemetry_client import telemetry_client_from_env  # noqa: E402

STEP_NS = macros.sec2nano(10.0)
TASK_NAME = "dynamicsTask"
PROCESS_NAME = "dynamicsProcess"

DEFAULT_PARAMETERS: dict[str, float] = {
    "semi_major_axis_m": 7_000_000.0,
    "eccentricity": 0.0001,
    "inclination_deg": 33.3,
    "raan_deg": 48.2,
    "arg_perigee_deg": 347.8,
    "true_anomaly_deg": 85.3,
    "duration_orbits": 0.75,
}

TRAJECTORY_HEADER = "time_s,r_x_m,r_y_m,r_z_m,v_x_m_s,v_y_m_s,v_z_m_s"


class ScenarioConfigError(ValueError):
    """The environment, run config or parameters are unusable."""


@dataclass(frozen=True)
class OrbitParameters:
    """Initial classical orbital elements and run length."""

    semi_major_axis_m: float
    eccentricity: float
    inclination_deg: float
    raan_deg: float
    arg_perigee_deg: float
    true_anomaly_deg: float
    duration_orbits: float

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> OrbitParameters:
        """Build parameters from a run-config mapping, filling in defaults."""
        unknown = sorted(set(raw) - set(DEFAULT_PARAMETERS))
        if unknown:
            print(f"warning: ignoring unknown parameters: {', '.join(unknown)}", file=sys.stderr)
        values: dict[str, float] = {}
        for name, default in DEFAULT_PARAMETERS.items():
            value = raw.get(name, default)
            try:
                values[name] = float(value)
            except (TypeError, ValueError):
                raise ScenarioConfigError(f"parameter {name!r} is not a number: {value!r}") from None
            if not math.isfinite(values[name]):
                raise ScenarioConfigError(f"parameter {name!r} is not finite: {value!r}")
        params = cls(**values)
        params.validate()
        return params

    def validate(self) -> None:
        """Reject element sets that do not describe a closed orbit run."""
        if self.semi_major_axis_m <= 0.0:
            raise ScenarioConfigError(f"semi_major_axis_m must be > 0, got {self.semi_major_axis_m}")
        if not 0.0 <= self.eccentricity < 1.0:
            raise ScenarioConfigError(f"eccentricity must be in [0, 1), got {self.eccentricity}")
        if not 0.0 <= self.inclination_deg <= 180.0:
            raise ScenarioConfigError(f"inclination_deg must be in [0, 180], got {self.inclination_deg}")
        if self.duration_orbits <= 0.0:
            raise ScenarioConfigError(f"duration_orbits must be > 0, got {self.duration_orbits}")


@dataclass(frozen=True)
class RunConfig:
    """The parts of the runner's run config this scenario uses."""

    run_id: int
    parameters: OrbitParameters
    metadata: dict[str, Any]


@dataclass
class OrbitSimulation:
    """A ready-to-run Basilisk simulation and the handles needed to read it."""

    sim: SimulationBaseClass.SimBaseClass
    spacecraft: spacecraft.Spacecraft
    recorder: Any
    mu: float
    period_s: float


def required_env(name: str) -> str:
    """Return an environment variable or raise a config error naming it."""
    value = os.environ.get(name)
    if not value:
        raise ScenarioConfigError(f"environment variable {name} is not set")
    return value


def load_run_config(path: Path) -> RunConfig:
    """Parse and validate the JSON run config written by the runner."""
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise ScenarioConfigError(f"cannot read run config {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioConfigError(f"run config {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioConfigError(f"run config {path} must be a JSON object")
    params = raw.get("parameters") or {}
    metadata = raw.get("metadata") or {}
    for key, value in (("parameters", params), ("metadata", metadata)):
        if not isinstance(value, dict):
            raise ScenarioConfigError(f"run config {key!r} must be a JSON object")
    try:
        run_id = int(raw.get("run_id", 0))
    except (TypeError, ValueError, OverflowError):
        raise ScenarioConfigError(f"run_id is not an integer: {raw.get('run_id')!r}") from None
    return RunConfig(
        run_id=run_id,
        parameters=OrbitParameters.from_mapping(params),
        metadata=metadata,
    )


def build_simulation(params: OrbitParameters) -> OrbitSimulation:
    """Create the spacecraft, point-mass Earth gravity and state recorder."""
    sim = SimulationBaseClass.SimBaseClass()
    process = sim.CreateNewProcess(PROCESS_NAME)
    process.addTask(sim.CreateNewTask(TASK_NAME, STEP_NS))

    sc_object = spacecraft.Spacecraft()
    sc_object.ModelTag = "lynx-sat"
    sim.AddModelToTask(TASK_NAME, sc_object)

    grav_factory = simIncludeGravBody.gravBodyFactory()
    earth = grav_factory.createEarth()
    earth.isCentralBody = True
    grav_factory.addBodiesTo(sc_object)

    perigee_m = params.semi_major_axis_m * (1.0 - params.eccentricity)
    if perigee_m <= earth.radEquator:
        raise ScenarioConfigError(
            f"perigee radius {perigee_m:.1f} m is inside the Earth (radius {earth.radEquator:.1f} m)"
        )

    elements = orbitalMotion.ClassicElements()
    elements.a = params.semi_major_axis_m
    elements.e = params.eccentricity
    elements.i = params.inclination_deg * macros.D2R
    elements.Omega = params.raan_deg * macros.D2R
    elements.omega = params.arg_perigee_deg * macros.D2R
    elements.f = params.true_anomaly_deg * macros.D2R
    r_init, v_init = orbitalMotion.elem2rv(earth.mu, elements)
    sc_object.hub.r_CN_NInit = r_init
    sc_object.hub.v_CN_NInit = v_init

    recorder = sc_object.scStateOutMsg.recorder()
    sim.AddModelToTask(TASK_NAME, recorder)
    sim.InitializeSimulation()

    period_s = 2.0 * math.pi * math.sqrt(params.semi_major_axis_m**3 / earth.mu)
    return OrbitSimulation(sim, sc_object, recorder, earth.mu, period_s)


def orbit_telemetry(mu: float, r_vec: np.ndarray, v_vec: np.ndarray) -> dict[str, float]:
    """Scalar telemetry channels for one inertial position/velocity sample."""
    oe = orbitalMotion.rv2elem(mu, r_vec, v_vec)
    return {
        "orbit.radius_km": float(np.linalg.norm(r_vec) / 1000.0),
        "orbit.speed_m_s": float(np.linalg.norm(v_vec)),
        "orbit.semi_major_axis_km": float(oe.a / 1000.0),
        "orbit.eccentricity": float(oe.e),
        "orbit.inclination_deg": float(oe.i * macros.R2D),
        "orbit.true_anomaly_deg": float(oe.f * macros.R2D),
    }


def run_with_telemetry(orbit: OrbitSimulation, duration_s: float) -> int:
    """Step the simulation one task step at a time, sending one sample per step.

    Returns the number of steps executed (the t = 0 step included).
    """
    step_count = int(macros.sec2nano(duration_s) // STEP_NS) + 1
    client = telemetry_client_from_env()
    try:
        for step in range(step_count):
            stop_ns = step * STEP_NS
            orbit.sim.ConfigureStopTime(stop_ns)
            orbit.sim.ExecuteSimulation()
            state = orbit.spacecraft.scStateOutMsg.read()
            r_vec = np.asarray(state.r_BN_N, dtype=float)
            v_vec = np.asarray(state.v_BN_N, dtype=float)
            client.send(orbit_telemetry(orbit.mu, r_vec, v_vec), timestamp_ns=int(stop_ns))
    finally:
        client.close()
    return step_count


def write_trajectory_csv(path: Path, times_s: np.ndarray, r_n: np.ndarray, v_n: np.ndarray) -> None:
    """Write one row per recorded step: time, inertial position and velocity."""
    rows = np.column_stack((times_s, r_n, v_n))
    np.savetxt(path, rows, delimiter=",", header=TRAJECTORY_HEADER, comments="", fmt="%.17g")


def plot_position(path: Path, times_s: np.ndarray, r_n: np.ndarray, period_s: float) -> None:
    """Plot inertial position components in km against time in orbits."""
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        for idx, axis_name in enumerate("xyz"):
            ax.plot(times_s / period_s, r_n[:, idx] / 1000.0, label=f"$r_{{{axis_name}}}$")
        ax.set_xlabel("Time [orbits]")
        ax.set_ylabel("Inertial position [km]")
        ax.set_title("Spacecraft inertial position")
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def final_state(mu: float, time_s: float, r_vec: np.ndarray, v_vec: np.ndarray) -> dict[str, Any]:
    """Describe the last recorded state in Cartesian and orbital-element form."""
    oe = orbitalMotion.rv2elem(mu, r_vec, v_vec)
    return {
        "time_s": float(time_s),
        "r_N_m": [float(x) for x in r_vec],
        "v_N_m_s": [float(x) for x in v_vec],
        **orbit_telemetry(mu, r_vec, v_vec),
        "raan_deg": float(oe.Omega * macros.R2D),
        "arg_perigee_deg": float(oe.omega * macros.R2D),
    }


def run_scenario(config: RunConfig, output_dir: Path, started: float) -> None:
    """Simulate the orbit, stream telemetry and write all artifacts."""
    params = config.parameters
    orbit = build_simulation(params)
    duration_s = params.duration_orbits * orbit.period_s
    step_count = run_with_telemetry(orbit, duration_s)

    times_s = orbit.recorder.times() * macros.NANO2SEC
    r_n = np.asarray(orbit.recorder.r_BN_N, dtype=float)
    v_n = np.asarray(orbit.recorder.v_BN_N, dtype=float)
    if len(times_s) != step_count:
        raise RuntimeError(f"recorder holds {len(times_s)} samples, expected {step_count}")

    output_dir.mkdir(parents=True, exist_ok=True)
    write_trajectory_csv(output_dir / "trajectory.csv", times_s, r_n, v_n)
    plot_position(output_dir / "orbit_position.png", times_s, r_n, orbit.period_s)

    summary = {
        "success": True,
        "run_id": config.run_id,
        "parameters": asdict(params),
        "metadata": config.metadata,
        "orbital_period_s": orbit.period_s,
        "requested_duration_s": duration_s,
        "step_size_s": STEP_NS * macros.NANO2SEC,
        "sample_count": int(len(times_s)),
        "final_state": final_state(orbit.mu, times_s[-1], r_n[-1], v_n[-1]),
        "execution_time_s": time.perf_counter() - started,
    }
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def main() -> int:
    """Entry point used by the Lynx runner; returns the process exit status."""
    started = time.perf_counter()
    try:
        config = load_run_config(Path(required_env("TETRYX_RUN_CONFIG")))
        output_dir = Path(required_env("TETRYX_OUTPUT_DIR"))
        run_scenario(config, output_dir, started)
    except ScenarioConfigError as exc:
        print(f"scenario_basic_orbit_lynx: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

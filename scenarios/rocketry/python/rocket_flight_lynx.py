"""RocketPy 6-DOF flight of a high-power rocket, as a Lynx scenario.

Reads the run config named by ``TETRYX_RUN_CONFIG``, builds the rocket, its solid motor (the thrust
curve is defined here, scaled by the sampled impulse factor, never downloaded) and an offline
environment (standard atmosphere with a power-law wind profile), flies it from the rail to landing,
streams flight telemetry (through ``lynx_telemetry_client``, a no-op when ``TETRYX_TELEMETRY_URL`` is
unset) and writes ``summary.json`` and ``trajectory.csv`` to ``TETRYX_OUTPUT_DIR``.

Parameters (all optional, defaults in DEFAULTS): impulse_scale, dry_mass_kg, wind_speed_mps (at
10 m), wind_from_deg, inclination_deg, heading_deg, rail_length_m.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from rocketpy import Environment, Flight, Rocket, SolidMotor

from lynx_telemetry_client import telemetry_client_from_env

DEFAULTS = {
    "impulse_scale": 1.0,
    "dry_mass_kg": 14.426,
    "wind_speed_mps": 5.0,
    "wind_from_deg": 270.0,
    "inclination_deg": 85.0,
    "heading_deg": 90.0,
    "rail_length_m": 5.2,
}
# A 75 mm M-class motor, about 6 kN s over 3.9 s (time s, thrust N).
THRUST_CURVE = [
    (0.0, 0.0),
    (0.05, 1600.0),
    (0.25, 1850.0),
    (1.0, 1800.0),
    (2.0, 1650.0),
    (3.0, 1450.0),
    (3.6, 900.0),
    (3.9, 0.0),
]
WIND_REFERENCE_M, WIND_EXPONENT, WIND_TOP_M = 10.0, 1 / 7, 10_000.0
TELEMETRY_HZ = 10.0


def parameters() -> dict[str, float]:
    config = json.loads(Path(os.environ["TETRYX_RUN_CONFIG"]).read_text())
    given = config.get("parameters", {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise SystemExit(f"rocket_flight_lynx: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    return {k: float(given.get(k, v)) for k, v in DEFAULTS.items()}


def environment(p: dict[str, float]) -> Environment:
    """Standard atmosphere with a 1/7 power-law wind blowing from `wind_from_deg`, no network needed."""
    env = Environment(latitude=32.99, longitude=-106.97, elevation=1400)
    heights = [0.0, 2.0, 5.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, WIND_TOP_M]
    speed = [p["wind_speed_mps"] * (max(h, 1.0) / WIND_REFERENCE_M) ** WIND_EXPONENT for h in heights]
    towards = math.radians(p["wind_from_deg"] + 180.0)  # blowing towards: east = u, north = v
    env.set_atmospheric_model(
        type="custom_atmosphere",
        pressure=None,
        temperature=None,
        wind_u=[(h, s * math.sin(towards)) for h, s in zip(heights, speed, strict=True)],
        wind_v=[(h, s * math.cos(towards)) for h, s in zip(heights, speed, strict=True)],
    )
    return env


def rocket(p: dict[str, float]) -> Rocket:
    motor = SolidMotor(
        thrust_source=[(t, f * p["impulse_scale"]) for t, f in THRUST_CURVE],
        burn_time=3.9,
        dry_mass=1.815,
        dry_inertia=(0.125, 0.125, 0.002),
        nozzle_radius=0.033,
        throat_radius=0.011,
        grain_number=5,
        grain_density=1815,
        grain_outer_radius=0.033,
        grain_initial_inner_radius=0.015,
        grain_initial_height=0.12,
        grain_separation=0.005,
        grains_center_of_mass_position=0.397,
        center_of_dry_mass_position=0.317,
        nozzle_position=0,
        coordinate_system_orientation="nozzle_to_combustion_chamber",
    )
    r = Rocket(
        radius=0.0635,
        mass=p["dry_mass_kg"],
        inertia=(6.321, 6.321, 0.034),
        power_off_drag=0.5,
        power_on_drag=0.45,
        center_of_mass_without_motor=0,
        coordinate_system_orientation="tail_to_nose",
    )
    r.add_motor(motor, position=-1.255)
    r.add_nose(length=0.558, kind="von karman", position=1.278)
    r.add_trapezoidal_fins(n=4, root_chord=0.12, tip_chord=0.06, span=0.11, position=-1.05)
    r.add_tail(top_radius=0.0635, bottom_radius=0.0435, length=0.06, position=-1.195)
    r.add_parachute("drogue", cd_s=1.0, trigger="apogee", sampling_rate=105, lag=1.5)
    r.add_parachute("main", cd_s=10.0, trigger=800, sampling_rate=105, lag=1.5)
    return r


def fly(p: dict[str, float], env: Environment, vehicle: Rocket) -> Flight:
    """The flight off the rail at the run's launch angle and heading (up to 600 s)."""
    return Flight(
        rocket=vehicle,
        environment=env,
        rail_length=p["rail_length_m"],
        inclination=p["inclination_deg"],
        heading=p["heading_deg"],
        max_time=600,
        verbose=False,
    )


def stream(flight: Flight, ground: float) -> int:
    """Send the trajectory at TELEMETRY_HZ of flight time; the watchdog sees every sample."""
    times = np.arange(0.0, flight.t_final, 1.0 / TELEMETRY_HZ)
    x, y, z = flight.x(times), flight.y(times), flight.z(times)
    speed, vz, aoa = flight.speed(times), flight.vz(times), flight.angle_of_attack(times)
    client = telemetry_client_from_env()
    try:
        for i, t in enumerate(times):
            sample = {
                "flight.altitude_m": float(z[i] - ground),
                "flight.speed_mps": float(speed[i]),
                "flight.vertical_speed_mps": float(vz[i]),
                "flight.lateral_drift_m": float(math.hypot(x[i], y[i])),
            }
            if t <= flight.apogee_time:  # angle of attack means something only on the way up
                sample["flight.angle_of_attack_deg"] = float(aoa[i])
            client.send(sample, timestamp_ns=int(t * 1e9))
    finally:
        client.close()
    return len(times)


def main() -> int:
    started = time.perf_counter()
    p = parameters()
    out = Path(os.environ["TETRYX_OUTPUT_DIR"])
    env = environment(p)
    flight = fly(p, env, rocket(p))
    samples = stream(flight, env.elevation)
    times = np.arange(0.0, flight.t_final, 0.5)
    rows = np.column_stack(
        (times, flight.x(times), flight.y(times), flight.z(times) - env.elevation, flight.speed(times))
    )
    np.savetxt(out / "trajectory.csv", rows, delimiter=",", header="t_s,x_m,y_m,altitude_m,speed_mps", comments="")
    summary = {
        "apogee_m": flight.apogee - env.elevation,
        "apogee_time_s": flight.apogee_time,
        "max_speed_mps": flight.max_speed,
        "max_mach": flight.max_mach_number,
        "out_of_rail_speed_mps": flight.out_of_rail_velocity,
        "landing_x_m": flight.x_impact,
        "landing_y_m": flight.y_impact,
        "landing_drift_m": math.hypot(flight.x_impact, flight.y_impact),
        "impact_speed_mps": flight.impact_velocity,
        "flight_time_s": flight.t_final,
        "telemetry_samples": samples,
        "wall_time_s": time.perf_counter() - started,
    }
    summary = {k: (float(v) if not isinstance(v, int) else v) for k, v in summary.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

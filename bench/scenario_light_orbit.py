"""A light Basilisk scenario whose imports are all inside main(), as many real scripts are written.

Reads the run config named by TETRYX_RUN_CONFIG (the Basic Orbit tutorial's parameters), propagates
a point-mass Earth orbit for `duration_orbits` with a 0.2 s integration step in one call (no per-step
telemetry, no plot), and writes summary.json and trajectory.csv (one row per 10 s) to
TETRYX_OUTPUT_DIR. The simulation costs about as much CPU as importing Basilisk does, so a fresh
process per run doubles the cost of a run: how an orchestrator starts runs decides its speed.
`bench_runner.py` runs it under every orchestrator; `run(parameters, output_dir)` is the body they all call.
"""


def run(parameters: dict, output_dir: str) -> dict:
    """Build, propagate and summarise one orbit; the imports happen on the first call."""
    import json
    import math
    from pathlib import Path

    import numpy as np
    from Basilisk.simulation import spacecraft
    from Basilisk.utilities import SimulationBaseClass, macros, orbitalMotion, simIncludeGravBody

    sim = SimulationBaseClass.SimBaseClass()
    process = sim.CreateNewProcess("lightProcess")
    process.addTask(sim.CreateNewTask("lightTask", macros.sec2nano(0.2)))
    craft = spacecraft.Spacecraft()
    sim.AddModelToTask("lightTask", craft)
    gravity = simIncludeGravBody.gravBodyFactory()
    earth = gravity.createEarth()
    earth.isCentralBody = True
    gravity.addBodiesTo(craft)
    elements = orbitalMotion.ClassicElements()
    elements.a = parameters.get("semi_major_axis_m", 7.0e6)
    elements.e = parameters.get("eccentricity", 1e-4)
    elements.i = parameters.get("inclination_deg", 33.3) * macros.D2R
    elements.Omega = parameters.get("raan_deg", 48.2) * macros.D2R
    elements.omega = parameters.get("arg_perigee_deg", 347.8) * macros.D2R
    elements.f = parameters.get("true_anomaly_deg", 85.3) * macros.D2R
    r, v = orbitalMotion.elem2rv(earth.mu, elements)
    craft.hub.r_CN_NInit = r
    craft.hub.v_CN_NInit = v
    recorder = craft.scStateOutMsg.recorder(macros.sec2nano(10.0))
    sim.AddModelToTask("lightTask", recorder)
    period_s = 2.0 * math.pi * math.sqrt(elements.a**3 / earth.mu)
    sim.InitializeSimulation()
    sim.ConfigureStopTime(macros.sec2nano(parameters.get("duration_orbits", 0.75) * period_s))
    sim.ExecuteSimulation()
    state = craft.scStateOutMsg.read()
    summary = {"success": True, "parameters": parameters, "orbital_period_s": period_s,
               "final_r_N_m": [float(x) for x in state.r_BN_N], "final_v_N_m_s": [float(x) for x in state.v_BN_N]}
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary) + "\n")
    rows = np.column_stack((recorder.times() * macros.NANO2SEC, np.asarray(recorder.r_BN_N)))
    np.savetxt(out / "trajectory.csv", rows, delimiter=",", header="time_s,r_x_m,r_y_m,r_z_m", comments="")
    return summary


def main() -> int:
    import json
    import os
    from pathlib import Path

    config = json.loads(Path(os.environ["TETRYX_RUN_CONFIG"]).read_text())
    run(config.get("parameters", {}), os.environ["TETRYX_OUTPUT_DIR"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

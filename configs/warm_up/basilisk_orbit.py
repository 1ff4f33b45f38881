"""Warm-up for the Basic Orbit runner's fork server (runner config `warm_up`).

Runs once in the fork server after `preload`, before any job is forked: it pays the first-use
costs that imports alone do not (matplotlib font loading and text layout, Basilisk's first
simulation build and step), so every forked job starts with them done. It leaves no threads,
opens no gRPC channel, stops the progress-bar thread Basilisk starts and leaves no figure open.
"""

import io
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from Basilisk.simulation import spacecraft  # noqa: E402
from Basilisk.utilities import SimulationBaseClass, macros, orbitalMotion, simIncludeGravBody  # noqa: E402


def warm_plot() -> None:
    """Lay out and render a small labelled figure (loads fonts, text and PNG code paths)."""
    fig, ax = plt.subplots(figsize=(4, 3))
    try:
        ax.plot([0.0, 0.5, 1.0], [0.0, 1.0, 0.0], label="$r_{x}$")
        ax.set_xlabel("Time [orbits]")
        ax.set_ylabel("Inertial position [km]")
        ax.set_title("warm-up")
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(io.BytesIO(), format="png", dpi=50)
    finally:
        plt.close(fig)


def warm_simulation() -> None:
    """Build and step a tiny point-mass orbit (SWIG types, messaging, integrator)."""
    sim = SimulationBaseClass.SimBaseClass()
    process = sim.CreateNewProcess("warmProcess")
    process.addTask(sim.CreateNewTask("warmTask", macros.sec2nano(10.0)))
    craft = spacecraft.Spacecraft()
    sim.AddModelToTask("warmTask", craft)
    gravity = simIncludeGravBody.gravBodyFactory()
    earth = gravity.createEarth()
    earth.isCentralBody = True
    gravity.addBodiesTo(craft)
    elements = orbitalMotion.ClassicElements()
    elements.a, elements.e, elements.i = 7.0e6, 0.001, 0.5
    elements.Omega = elements.omega = elements.f = 0.1
    r, v = orbitalMotion.elem2rv(earth.mu, elements)
    craft.hub.r_CN_NInit = r
    craft.hub.v_CN_NInit = v
    recorder = craft.scStateOutMsg.recorder()
    sim.AddModelToTask("warmTask", recorder)
    sim.InitializeSimulation()
    sim.ConfigureStopTime(macros.sec2nano(30.0))
    sim.ExecuteSimulation()


def stop_progress_monitor() -> None:
    """Basilisk's ExecuteSimulation shows a tqdm bar, whose first use starts tqdm's monitor thread;
    the fork server must hold no threads when it forks, so stop it (each job starts its own)."""
    tqdm_module = sys.modules.get("tqdm.std")
    monitor = getattr(getattr(tqdm_module, "tqdm", None), "monitor", None)
    if monitor is not None:
        monitor.exit()
        tqdm_module.tqdm.monitor = None


warm_plot()
warm_simulation()
stop_progress_monitor()

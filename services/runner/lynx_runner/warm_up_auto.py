"""The built-in warm-up (runner config `warm_up: auto`, the default), run once in the fork server.

It pays, once, the first-use costs that imports alone do not, for the modules the fork server
has already preloaded (and only those), so every forked job starts with them done:

* `lynx_telemetry_client`: imports its telemetry messages (protobuf, never gRPC: the runner's
  Unix socket path needs none) and encodes one request, as its shipping thread will;
* `matplotlib.pyplot`: lays out and renders a small labelled figure to PNG (fonts, text, the
  backend pyplot resolves, which is Agg on a headless runner) and closes it;
* `Basilisk.utilities.SimulationBaseClass`: builds and steps a tiny point-mass orbit (SWIG types,
  messaging, integrator), then stops the progress-bar thread Basilisk's first run starts and drops
  tqdm's write lock (a semaphore that forked jobs would otherwise share).

It never imports gRPC (its core keeps process-wide state a forked child would inherit), and it
leaves no threads, no shared lock and no open figure. It runs with the fork server's
interpreter, so it imports nothing from Lynx; a failure is reported in the fork server's log
and never stops warm starts.
"""

import io
import sys


def warm_plot() -> None:
    """Lay out and render a small labelled pyplot figure to PNG, then close it."""
    import matplotlib.pyplot as plt

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


def warm_telemetry() -> None:
    """Import the client's telemetry messages and encode a columnar request (no client, no thread, no gRPC)."""
    from lynx_telemetry_client import telemetry_service_pb2 as pb

    request = pb.PublishRequest(dropped_samples=1)
    request.blocks.add(variables=["x"], timestamps_ns=[1, 2], values=[1.0, 2.0])
    pb.PublishRequest.FromString(request.SerializeToString())


def warm_simulation() -> None:
    """Build and step a tiny point-mass orbit (SWIG types, messaging, integrator)."""
    from Basilisk.simulation import spacecraft
    from Basilisk.utilities import SimulationBaseClass, macros, orbitalMotion, simIncludeGravBody

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


def reset_progress_bars() -> None:
    """Basilisk's ExecuteSimulation shows a tqdm bar. Its first use starts tqdm's monitor thread
    (the fork server must hold no threads when it forks: stop it) and creates tqdm's write lock,
    which includes a multiprocessing RLock: a semaphore every forked job would share. A job
    SIGKILLed while it draws its bar (early termination, timeout, cancel) would leave that
    semaphore held and the next job's first bar would wait forever. Drop both, so every job
    creates its own."""
    tqdm_module = sys.modules.get("tqdm.std")
    if tqdm_module is None:
        return
    tqdm_class = getattr(tqdm_module, "tqdm", None)
    monitor = getattr(tqdm_class, "monitor", None)
    if monitor is not None:
        monitor.exit()
        tqdm_class.monitor = None
    if tqdm_class is not None and "_lock" in vars(tqdm_class):
        del tqdm_class._lock
    write_lock = getattr(tqdm_module, "TqdmDefaultWriteLock", None)
    if write_lock is not None and "mp_lock" in vars(write_lock):
        del write_lock.mp_lock


def main() -> None:
    """Warm what is preloaded; each part is independent of the others."""
    failures = []
    parts = (
        ("lynx_telemetry_client", warm_telemetry),
        ("matplotlib.pyplot", warm_plot),
        ("Basilisk.utilities.SimulationBaseClass", warm_simulation),
    )
    for module, warm in parts:
        if module in sys.modules:
            try:
                warm()
            except Exception as exc:  # noqa: BLE001 - a failed warm-up only costs speed
                failures.append(f"{warm.__name__}: {type(exc).__name__}: {exc}")
    reset_progress_bars()
    if failures:
        raise RuntimeError("; ".join(failures))


main()

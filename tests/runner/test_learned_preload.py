"""Learned preloads (`preload: [auto]`): the fork server imports what jobs imported, between jobs.

Real fork servers and real scenario processes; the scenario imports inside main(), so the
entrypoint's top-level imports give the fork server nothing to preload.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest
from test_engines import MODES, base_config, engines, lease, run_modes  # noqa: F401 - fixtures

from lynx_runner.engine import JobHandle

pytestmark = pytest.mark.timeout(120)
SCENARIOS = Path(__file__).parent / "scenarios"


async def learned(engine, name: str, seconds: float = 20.0) -> bool:
    """Wait until the engine's fork server has learned (imported) `name`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if name in engine.forkserver.learned:
            return True
        await asyncio.sleep(0.05)
    return False


async def start_latency(engine, mode: str = "slow") -> tuple[float, dict[str, str]]:
    """Seconds from asking for the job to the scenario finishing its imports, and the result's metadata."""
    asked = time.time()
    result = await engine.run(JobHandle(lease(parameters={"mode": mode})))
    assert result.success, result.error_message
    [ready] = [f.path for f in result.files if f.relative_path == "ready.txt"]
    return float(Path(ready).read_text()) - asked, dict(result.metadata)


@pytest.fixture
def lazy_config(base_config):  # noqa: F811 - the fixture from test_engines
    return replace(base_config, basilisk_entrypoint=SCENARIOS / "lazy.py")


async def test_after_the_first_job_a_scenario_that_imports_in_main_starts_warm(engines, lazy_config):  # noqa: F811
    engine = await engines(lazy_config)  # defaults: warm_start true, preload [auto]
    assert "slow_import" not in engine.forkserver.preloaded  # not a top-level import: auto alone misses it
    first, metadata = await start_latency(engine)
    assert metadata["start"] == "warm" and first >= 0.6  # forked, but it still paid for its import
    assert await learned(engine, "slow_import")
    for _ in range(2):
        later, metadata = await start_latency(engine)
        assert metadata["start"] == "warm"
        assert later < 0.35, f"a job after learning took {later:.2f} s to start (the first {first:.2f} s)"


async def test_an_explicit_preload_list_learns_nothing(engines, lazy_config):  # noqa: F811
    engine = await engines(replace(lazy_config, preload=("json",)))
    await start_latency(engine)
    await asyncio.sleep(1.0)
    later, _ = await start_latency(engine)
    assert engine.forkserver.learned == [] and later >= 0.6


async def test_a_module_that_starts_a_thread_is_never_preloaded(engines, lazy_config):  # noqa: F811
    engine = await engines(lazy_config)
    await start_latency(engine)
    assert await learned(engine, "slow_import")
    await start_latency(engine, "thread")
    deadline = time.monotonic() + 20
    while "thread_import" not in engine.forkserver.rejected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert "thread_import" in engine.forkserver.rejected
    assert "thread_import" not in engine.forkserver.learned
    threads = (Path("/proc") / str(engine.forkserver._proc.pid) / "task")
    assert len(list(threads.iterdir())) == 1  # the fork server still holds one thread
    later, metadata = await start_latency(engine)
    assert metadata["start"] == "warm" and later < 0.35


async def test_grpc_is_never_learned(engines, lazy_config):  # noqa: F811
    engine = await engines(lazy_config)
    await start_latency(engine, "grpc")
    assert await learned(engine, "slow_import")
    await start_latency(engine, "grpc")
    await asyncio.sleep(0.5)
    assert not [n for n in engine.forkserver.learned if n.split(".")[0] == "grpc"]
    maps = (Path("/proc") / str(engine.forkserver._proc.pid) / "maps").read_text()
    assert "cygrpc" not in maps  # gRPC's core is not loaded in the fork server


async def test_the_telemetry_client_is_learned_and_its_jobs_never_import_grpc(engines, lazy_config):  # noqa: F811
    engine = await engines(lazy_config)
    for _ in range(2):
        result = await engine.run(JobHandle(lease(parameters={"mode": "telemetry"})))
        assert result.success and result.telemetry_samples_sent == 1, result.error_message
        [flag] = [f.path for f in result.files if f.relative_path == "grpc.txt"]
        assert Path(flag).read_text() == "False"  # the client shipped over the job's Unix socket
        if await learned(engine, "lynx_telemetry_client.telemetry_service_pb2", 5.0):
            break
    assert "lynx_telemetry_client" in engine.forkserver.learned
    maps = (Path("/proc") / str(engine.forkserver._proc.pid) / "maps").read_text()
    assert "cygrpc" not in maps


async def test_a_scenario_cannot_tell_warm_from_cold_with_learned_preloads(engines, base_config):  # noqa: F811
    cold = await engines(replace(base_config, warm_start=False))
    warm = await engines(base_config)  # preload [auto]: the probe imports decimal inside a function
    assert "decimal" not in warm.forkserver.preloaded
    await warm.run(JobHandle(lease("learning", {"mode": "ok"})))
    assert await learned(warm, "decimal")

    cold_results, cold_seen = await run_modes(cold, "job")
    warm_results, warm_seen = await run_modes(warm, "job")
    for mode, expected_code in MODES:
        c, w = cold_results[mode], warm_results[mode]
        assert (c.metadata["start"], w.metadata["start"]) == ("cold", "warm")
        assert (c.exit_code, w.exit_code) == (expected_code, expected_code), mode
        seen_cold, seen_warm = cold_seen[mode], warm_seen[mode]
        assert seen_cold.pop("random") != seen_warm.pop("random")
        assert seen_cold == seen_warm, mode
    assert warm_results["raise"].error_message == cold_results["raise"].error_message


async def test_learning_never_holds_up_a_job_start_or_exit(engines, lazy_config, tmp_path):  # noqa: F811
    """The server imports what passed the trial in short slices between jobs: while it learns 20
    modules that take 0.1 s each to import, quick jobs still start and end promptly."""
    import shutil

    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name in ("lazy.py", "slow_import.py"):
        shutil.copy(SCENARIOS / name, scenarios / name)
    parts = scenarios / "slow_parts"
    parts.mkdir()
    names = [f"p{i:02d}" for i in range(20)]
    (parts / "__init__.py").write_text("")
    for n in names:
        (parts / f"{n}.py").write_text("import time\n\ntime.sleep(0.1)\n")
    engine = await engines(replace(lazy_config, basilisk_entrypoint=scenarios / "lazy.py"))
    result = await engine.run(JobHandle(lease(parameters={"mode": "parts"})))
    assert result.success, result.error_message
    took = []
    deadline = time.monotonic() + 60
    while "slow_parts.p19" not in engine.forkserver.learned and time.monotonic() < deadline:
        asked = time.monotonic()
        quick = await engine.run(JobHandle(lease(parameters={"mode": "quick"})))
        took.append(time.monotonic() - asked)
        assert quick.success and quick.metadata["start"] == "warm", quick.error_message
    assert "slow_parts.p19" in engine.forkserver.learned
    assert len(took) >= 10, took  # the trial (about 2 s) and the import here (the same) were covered
    assert max(took) < 1.0, f"a quick job took {max(took):.2f} s while the fork server learned: {took}"


async def test_a_scenario_that_imports_in_main_unconditionally_starts_warm_from_its_first_job(engines,  # noqa: F811
                                                                                              lazy_config):
    engine = await engines(replace(lazy_config, basilisk_entrypoint=SCENARIOS / "eager.py"))
    assert "slow_import" in engine.forkserver.preloaded  # read from main()'s body, imported before any job
    first, metadata = await start_latency(engine)
    assert metadata["start"] == "warm"
    assert first < 0.35, f"the first job took {first:.2f} s to start: it imported slow_import itself"


async def test_imports_in_main_that_start_a_thread_are_dropped_and_jobs_still_start_warm(engines, lazy_config,  # noqa: F811
                                                                                         tmp_path, caplog):
    import shutil

    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name in ("slow_import.py", "thread_import.py"):
        shutil.copy(SCENARIOS / name, scenarios / name)
    source = (SCENARIOS / "eager.py").read_text()
    threaded = source.replace("    import slow_import", "    import thread_import\n    import slow_import")
    assert threaded != source
    (scenarios / "eager.py").write_text(threaded)
    engine = await engines(replace(lazy_config, basilisk_entrypoint=scenarios / "eager.py"))
    # the server imported both, saw a thread, and started over without what main() imports
    assert not {"thread_import", "slow_import"} & set(engine.forkserver.preloaded)
    threads = Path("/proc") / str(engine.forkserver._proc.pid) / "task"
    assert len(list(threads.iterdir())) == 1
    log = (lazy_config.output_root / ".lynx" / "forkserver.log").read_text()
    assert "restarting without them" in log
    first, metadata = await start_latency(engine)
    assert metadata["start"] == "warm" and first >= 0.6  # it still runs, paying its own imports


def test_the_imports_read_from_function_bodies_are_the_unconditional_ones(tmp_path):
    from lynx_runner.forkserver import entrypoint_body_imports, entrypoint_imports

    script = tmp_path / "s.py"
    script.write_text('''
import top_level
def main():
    import in_main
    from pkg.sub import name
    try:
        import in_try
    except ImportError:
        import in_except
    with open("x") as f:
        import in_with
    if f:
        import in_if
    for _ in range(2):
        import in_loop
    def inner():
        import in_inner
class Model:
    def run(self):
        import in_method
if __name__ == "__main__":
    import in_guard
    main()
if DEBUG:
    import top_if
''')
    assert entrypoint_imports(str(script)) == ["top_level"]
    assert sorted(entrypoint_body_imports(str(script))) == sorted(
        ["in_main", "pkg.sub", "pkg.sub.name", "in_try", "in_with", "in_inner", "in_method", "in_guard"])

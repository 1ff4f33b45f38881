"""The basilisk engine: one job = output dir, telemetry endpoint, scenario subprocess, watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lynx.scheduler.v1 import scheduler_service_pb2 as sched_pb
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_common.server import GrpcServer
from lynx_runner.config import RunnerConfig, resolve_python
from lynx_runner.endpoint import JobTelemetryServicer
from lynx_runner.relay import FINAL_FLUSH_DEADLINE_S, TelemetryRelay
from lynx_runner.watchdog import Watchdog

log = logging.getLogger(__name__)
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
STDERR_TAIL_CHARS = 2000


@dataclass
class JobHandle:
    """A running job as the agent sees it: cancel it with `cancel()`."""

    lease: sched_pb.JobLease
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str = ""

    def cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        self.cancelled.set()


def collect_outputs(output_dir: Path) -> list[str]:
    """Absolute paths of the regular files under output_dir, sorted; links are not followed."""
    root = output_dir.resolve()
    files = []
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        files.append(str(path))
    return sorted(files)


def _tail(path: Path, chars: int = STDERR_TAIL_CHARS) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chars))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class Engine(Protocol):
    """What the agent needs from an engine: run one attempt to its end."""

    name: str

    async def start(self) -> None:
        """Prepare (for example a warm fork server) before the first lease."""

    async def close(self) -> None:
        """Release what start() acquired; running jobs are already gone."""

    async def run(self, handle: JobHandle) -> sched_pb.JobResult:
        """Run one attempt and describe how it ended; never raises for a scenario's fault."""


def build_engines(
    config: RunnerConfig, runner_id: str, telemetry_stub: tel_grpc.TelemetryServiceStub
) -> dict[str, Engine]:
    """The engines this runner serves, by name, from its config."""
    engines: dict[str, Engine] = {}
    for name in config.engines:
        if name == BasiliskEngine.name:
            engines[name] = BasiliskEngine(config, runner_id, telemetry_stub)
    return engines


class BasiliskEngine:
    """Runs the configured Python entrypoint once per job, under the TETRYX_* contract."""

    name = "basilisk"

    def __init__(self, config: RunnerConfig, runner_id: str, telemetry_stub: tel_grpc.TelemetryServiceStub):
        self.config = config
        self.runner_id = runner_id
        self.telemetry_stub = telemetry_stub

    async def start(self) -> None:
        """Nothing to prepare for a process per job."""

    async def close(self) -> None:
        """Nothing to release."""

    def _result(self, lease: sched_pb.JobLease, started: float, **fields) -> sched_pb.JobResult:
        try:
            simulation_name = str(json.loads(lease.run_config_json)["metadata"]["simulation_name"])
        except (ValueError, KeyError, TypeError):
            simulation_name = ""
        metadata = {
            "engine": self.name,
            "simulation_name": simulation_name,
            "entrypoint": str(self.config.basilisk_entrypoint),
            "runner_id": self.runner_id,
        }
        return sched_pb.JobResult(
            job_id=lease.job_id,
            attempt=lease.attempt,
            execution_time_secs=round(time.monotonic() - started, 3),
            metadata=metadata,
            **fields,
        )

    async def run(self, handle: JobHandle) -> sched_pb.JobResult:
        """Run one attempt to its end and describe how it ended."""
        lease = handle.lease
        started = time.monotonic()
        if not _SAFE_ID.fullmatch(lease.job_id):
            return self._result(lease, started, success=False, termination_reason="launch_error",
                                error_message=f"job id {lease.job_id!r} is not a safe directory name")
        output_dir = self.config.output_root / lease.job_id
        private_dir = self.config.output_root / ".lynx" / lease.job_id
        try:
            python = resolve_python(self.config.python_executable)
            entrypoint = self.config.entrypoint_path
            if not entrypoint.is_file():
                raise FileNotFoundError(f"basilisk_entrypoint {entrypoint} does not exist")
            shutil.rmtree(output_dir, ignore_errors=True)  # a retry starts from an empty directory
            output_dir.mkdir(parents=True)
            private_dir.mkdir(parents=True, exist_ok=True)
            run_config_path = private_dir / "run_config.json"
            document = json.loads(lease.run_config_json)
            if not isinstance(document, dict):
                raise ValueError("the lease's run config is not a JSON object")
            run_config_path.write_text(json.dumps(document, indent=2))
        except Exception as exc:  # noqa: BLE001 - reported as the job's failure
            return self._result(lease, started, success=False, termination_reason="launch_error",
                                error_message=f"cannot launch: {exc}")

        watchdog = Watchdog(lease.early_termination)
        relay = TelemetryRelay(self.telemetry_stub, lease.job_id, lease.batch_id, lease.telemetry)
        endpoint = GrpcServer(
            lambda s: tel_grpc.add_TelemetryServiceServicer_to_server(JobTelemetryServicer(watchdog, relay), s),
            [tel_pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name],
        )
        await endpoint.start()
        flusher = asyncio.create_task(relay.run_periodic())
        env = {
            **os.environ,
            "TETRYX_RUN_CONFIG": str(run_config_path),
            "TETRYX_TELEMETRY_URL": endpoint.address,
            "TETRYX_OUTPUT_DIR": str(output_dir),
        }
        try:
            with (private_dir / "stdout.log").open("wb") as out, (private_dir / "stderr.log").open("wb") as err:
                proc = await asyncio.create_subprocess_exec(
                    python, str(entrypoint), cwd=self.config.working_directory, env=env,
                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                )
            log.info("job %s attempt %d: pid %d, telemetry on %s",
                     lease.job_id, lease.attempt, proc.pid, endpoint.address)
            reason, message = await self._supervise(proc, handle, watchdog, lease.timeout_seconds)
        except OSError as exc:
            reason, message = "launch_error", f"cannot start {python}: {exc}"
            proc = None
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await endpoint.stop(grace=0.5)
            await relay.flush(FINAL_FLUSH_DEADLINE_S)

        exit_code = proc.returncode if proc is not None else -1
        success = reason == "exited" and exit_code == 0
        if reason == "exited" and not success:
            tail = _tail(private_dir / "stderr.log")
            message = f"scenario exited with code {exit_code}" + (f"; stderr tail:\n{tail}" if tail else "")
        result = self._result(
            lease, started, success=success, exit_code=exit_code, termination_reason=reason,
            output_files=collect_outputs(output_dir),
        )
        result.metadata["telemetry_samples"] = str(relay.received)
        if not success:
            result.error_message = message
        return result

    async def _supervise(self, proc, handle: JobHandle, watchdog: Watchdog, timeout: float) -> tuple[str, str]:
        """Wait for the process, killing its group on breach, timeout or cancel; returns (reason, message)."""
        deadline = time.monotonic() + timeout if timeout > 0 else None
        waiter = asyncio.create_task(proc.wait())
        canceller = asyncio.create_task(handle.cancelled.wait())
        try:
            while True:
                tick = watchdog.period if watchdog.active else 1.0
                if deadline is not None:
                    tick = max(0.0, min(tick, deadline - time.monotonic()))
                await asyncio.wait({waiter, canceller}, timeout=tick, return_when=asyncio.FIRST_COMPLETED)
                breach = watchdog.check()
                if breach is not None:
                    outcome = ("early_termination", breach.message())
                elif canceller.done():
                    outcome = ("cancelled", f"cancelled: {handle.cancel_reason}")
                elif waiter.done():
                    _kill_group(proc)  # reap grandchildren the scenario left behind
                    return "exited", ""
                elif deadline is not None and time.monotonic() >= deadline:
                    outcome = ("timeout", f"timed out after {timeout:g} s (job_timeout_seconds)")
                else:
                    continue
                if not waiter.done():
                    _kill_group(proc)
                    log.info("job %s: killed (%s)", handle.lease.job_id, outcome[1])
                await waiter
                return outcome
        finally:
            canceller.cancel()
            if not waiter.done():  # the agent is shutting down: leave nothing running
                _kill_group(proc)
                await asyncio.shield(waiter)

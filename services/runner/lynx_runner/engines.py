"""The engines that ship with the runner: basilisk (cold or warm from a fork server) and command."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from lynx.scheduler.v1 import scheduler_service_pb2 as sched_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_common.errors import ValidationError
from lynx_runner.config import RunnerConfig, resolve_python
from lynx_runner.engine import Engine, JobPaths, ScenarioEngine
from lynx_runner.launch import ForkServer, ForkServerError, JobProcess, LaunchError, LaunchSpec, spawn_cold

log = logging.getLogger(__name__)
FORKSERVER_RETRY_S = 30.0
# A job leased while the fork server preloads waits this long for it before starting cold.
FORKSERVER_WAIT_S = 15.0


def build_engines(
    config: RunnerConfig, runner_id: str, telemetry_stub: tel_grpc.TelemetryServiceStub
) -> dict[str, Engine]:
    """The engines this runner serves, by name, from its config."""
    kinds: dict[str, type[ScenarioEngine]] = {BasiliskEngine.name: BasiliskEngine, CommandEngine.name: CommandEngine,
                                              PythonEngine.name: PythonEngine}
    return {name: kinds[name](config, runner_id, telemetry_stub) for name in config.engines if name in kinds}


class BasiliskEngine(ScenarioEngine):
    """Runs the configured Python entrypoint once per job, cold or forked from a warm fork server."""

    name = "basilisk"

    def __init__(self, config: RunnerConfig, runner_id: str, telemetry_stub: tel_grpc.TelemetryServiceStub):
        super().__init__(config, runner_id, telemetry_stub)
        self.forkserver: ForkServer | None = None
        self._starting: asyncio.Task | None = None
        self._retry_after = 0.0

    def describe(self) -> dict[str, str]:
        return {"entrypoint": str(self.config.basilisk_entrypoint)}

    async def start(self) -> None:
        """With warm_start, start the fork server in the background, so the runner registers at
        once; jobs leased while it preloads wait for it a little, then run cold (logged)."""
        if self.config.warm_start:
            self._starting = asyncio.create_task(self._start_forkserver(), name="forkserver-start")

    async def wait_warm(self) -> None:
        """Wait until a fork server start in progress has finished, however it ends."""
        if self._starting is not None:
            await asyncio.gather(asyncio.shield(self._starting), return_exceptions=True)

    def _ensure_forkserver(self) -> None:
        """(Re)start the fork server in the background when it is gone and a retry is due."""
        if self._starting is not None and not self._starting.done():
            return
        if (self.forkserver is not None and self.forkserver.alive) or time.monotonic() < self._retry_after:
            return
        self._starting = asyncio.create_task(self._restart_forkserver(), name="forkserver-restart")

    async def _restart_forkserver(self) -> None:
        if self.forkserver is not None:
            log.warning("the fork server is gone; restarting it")
            await self.forkserver.close()
            self.forkserver = None
        await self._start_forkserver()

    async def _start_forkserver(self) -> None:
        try:
            python = resolve_python(self.config.python_executable)
        except ValidationError as exc:
            log.error("warm start disabled: %s", exc)
            self._retry_after = time.monotonic() + FORKSERVER_RETRY_S
            return
        warm_up = self.config.working_directory / self.config.warm_up if self.config.warm_up else None
        server = ForkServer(python, self.config.preload, self.config.output_root / ".lynx" / "forkserver.log",
                            warm_up=warm_up, cwd=self.config.working_directory,
                            entrypoint=str(self.config.entrypoint_path))
        try:
            await server.start()
        except ForkServerError as exc:
            log.error("warm start unavailable, running jobs cold: %s", exc)
            self._retry_after = time.monotonic() + FORKSERVER_RETRY_S
            return
        self.forkserver = server

    async def close(self) -> None:
        """Stop the fork server (and a start still in progress)."""
        if self._starting is not None:
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
            self._starting = None
        if self.forkserver is not None:
            await self.forkserver.close()
            self.forkserver = None

    def launch_spec(self, paths: JobPaths, lease: sched_pb.JobLease, env: dict[str, str]) -> LaunchSpec:
        python = resolve_python(self.config.python_executable)
        entrypoint = self.config.entrypoint_path
        if not entrypoint.is_file():
            raise LaunchError(f"basilisk_entrypoint {entrypoint} does not exist")
        return LaunchSpec(job_id=lease.job_id, argv=[python, str(entrypoint)], cwd=self.config.working_directory,
                          env=env, stdout_fd=-1, stderr_fd=-1, entrypoint=str(entrypoint))

    async def spawn(self, spec: LaunchSpec) -> JobProcess:
        """Fork from the warm server when it runs; restart it if it died; otherwise start cold."""
        if self.config.warm_start:
            self._ensure_forkserver()
            if self._starting is not None and not self._starting.done():
                try:
                    await asyncio.wait_for(asyncio.shield(self._starting), FORKSERVER_WAIT_S)
                except TimeoutError:
                    log.info("job %s: the fork server is still preloading; starting it cold", spec.job_id)
            if self.forkserver is not None and self.forkserver.alive:
                try:
                    return await self.forkserver.spawn(spec)
                except ForkServerError as exc:
                    log.warning("job %s: warm start failed (%s); starting it cold", spec.job_id, exc)
        return await spawn_cold(spec)


class PythonEngine(BasiliskEngine):
    """The basilisk engine under a simulator-neutral name: any Python entrypoint (RocketPy, JSBSim, ...),
    cold or forked from a warm fork server that preloaded its imports."""

    name = "python"


class CommandEngine(ScenarioEngine):
    """Runs any executable with the configured argument template (placeholders, never a shell)."""

    name = "command"

    def describe(self) -> dict[str, str]:
        return {"entrypoint": self.config.command.executable if self.config.command else ""}

    def launch_spec(self, paths: JobPaths, lease: sched_pb.JobLease, env: dict[str, str]) -> LaunchSpec:
        if self.config.command is None:
            raise LaunchError("the runner config has no command")
        try:
            run_id = str(json.loads(lease.run_config_json).get("run_id", ""))
        except (ValueError, AttributeError):
            run_id = ""
        values = {"run_config": str(paths.run_config), "output_dir": str(paths.output_dir),
                  "telemetry_url": env["TETRYX_TELEMETRY_URL"], "job_id": lease.job_id, "batch_id": lease.batch_id,
                  "attempt": str(lease.attempt), "run_id": run_id,
                  "working_directory": str(self.config.working_directory)}
        argv = self.config.command.argv(values)
        argv[0] = self.config.command_executable()
        return LaunchSpec(job_id=lease.job_id, argv=argv, cwd=self.config.working_directory, env=env,
                          stdout_fd=-1, stderr_fd=-1)

"""Start and stop the Lynx services as separate local processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

STOP_GRACE_S = 5.0
READY_TIMEOUT_S = 60.0


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Ports:
    """Where each service listens; 0 on input means "pick a free port"."""

    scheduler: int = 50051
    sampler: int = 50052
    telemetry: int = 50053
    http: int = 8080

    def resolved(self) -> Ports:
        return Ports(*(p or free_port() for p in (self.scheduler, self.sampler, self.telemetry, self.http)))

    @property
    def scheduler_addr(self) -> str:
        return f"127.0.0.1:{self.scheduler}"

    @property
    def telemetry_addr(self) -> str:
        return f"127.0.0.1:{self.telemetry}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.http}"


@dataclass
class Service:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen | None = None


class StackError(RuntimeError):
    """A service failed to start or died."""


@dataclass
class Stack:
    """Sampler, scheduler, telemetry-ingest, gateway and N runners, each its own process."""

    data_dir: Path
    ports: Ports
    runners: int = 0
    runner_config: Path | None = None
    services: list[Service] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.absolute()
        self.ports = self.ports.resolved()
        logs = self.data_dir / "logs"
        py = [sys.executable, "-m"]
        p = self.ports
        data = str(self.data_dir)
        self.services = [
            Service("sampler", [*py, "lynx_sampler.server", "--port", str(p.sampler)], logs / "sampler.log"),
            Service(
                "telemetry",
                [*py, "lynx_telemetry.server", "--port", str(p.telemetry), "--data-dir", data],
                logs / "telemetry.log",
            ),
            Service(
                "scheduler",
                [*py, "lynx_scheduler.server", "--port", str(p.scheduler), "--data-dir", data,
                 "--sampler-addr", f"127.0.0.1:{p.sampler}"],
                logs / "scheduler.log",
            ),
            Service(
                "gateway",
                [*py, "lynx_gateway.server", "--port", str(p.http), "--scheduler-addr", p.scheduler_addr,
                 "--telemetry-addr", p.telemetry_addr],
                logs / "gateway.log",
            ),
        ]
        runner_env = {**os.environ, "LYNX_SCHEDULER_ADDR": p.scheduler_addr, "LYNX_TELEMETRY_ADDR": p.telemetry_addr}
        for i in range(1, self.runners + 1):
            runner_id = f"local-runner-{i:02d}"
            argv = [*py, "lynx_runner.main", "--runner-id", runner_id, "--name", f"Local Runner {i:02d}"]
            if self.runner_config is not None:
                argv += ["--config", str(self.runner_config)]
            self.services.append(Service(runner_id, argv, logs / f"{runner_id}.log", runner_env))

    @staticmethod
    def _stop_signal(service: Service) -> int:
        """Runners drain on SIGTERM; when the whole stack stops they stop at once (SIGINT) and
        kill their jobs rather than wait for them."""
        return signal.SIGINT if service.name.startswith("local-runner-") else signal.SIGTERM

    def start(self) -> None:
        """Start every process and wait until each answers its health check."""
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            for service in self.services:
                with service.log_path.open("ab") as log:
                    service.process = subprocess.Popen(
                        service.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        env=service.env, start_new_session=True,
                        preexec_fn=partial(_die_with_parent, self._stop_signal(service)),
                    )
            p = self.ports
            for name, port in (("sampler", p.sampler), ("telemetry", p.telemetry), ("scheduler", p.scheduler)):
                self._wait_grpc(name, f"127.0.0.1:{port}")
            self._wait_http("gateway", f"{p.gateway_url}/healthz")
            if self.runners:
                self._wait_runners()
        except BaseException:
            self.stop()
            raise

    def _check_alive(self) -> None:
        for service in self.services:
            if service.process is not None and service.process.poll() is not None:
                raise StackError(
                    f"{service.name} exited with code {service.process.returncode}; "
                    f"last lines of {service.log_path}:\n{tail(service.log_path)}"
                )

    def _wait(self, name: str, probe) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            if probe():
                return
            time.sleep(0.1)
        raise StackError(f"{name} did not become ready within {READY_TIMEOUT_S:.0f} s")

    def _wait_grpc(self, name: str, addr: str) -> None:
        def probe() -> bool:
            with grpc.insecure_channel(addr) as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                except grpc.RpcError:
                    return False
            return reply.status == health_pb2.HealthCheckResponse.SERVING

        self._wait(name, probe)

    def _wait_http(self, name: str, url: str) -> None:
        def probe() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=1.0) as reply:
                    return reply.status == 200
            except OSError:
                return False

        self._wait(name, probe)

    def _wait_runners(self) -> None:
        def probe() -> bool:
            try:
                with urllib.request.urlopen(f"{self.ports.gateway_url}/runners", timeout=1.0) as reply:
                    runners = json.load(reply)["runners"]
            except OSError:
                return False
            online = [r for r in runners if r["status"] == "Online" and r["runner_id"].startswith("local-runner-")]
            return len(online) >= self.runners

        self._wait("runners", probe)

    def watch(self) -> None:
        """Raise StackError as soon as any process exits."""
        self._check_alive()

    def stop(self) -> None:
        """SIGTERM every process (runners first, so their jobs die with them), then SIGKILL stragglers."""
        running = [s for s in reversed(self.services) if s.process is not None and s.process.poll() is None]
        for service in running:
            _signal_group(service.process, self._stop_signal(service))
        deadline = time.monotonic() + STOP_GRACE_S
        for service in running:
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(service.process, signal.SIGKILL)
                service.process.wait()


def _die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In the child: get `sig` if `lynx` itself dies, even by SIGKILL (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"

"""Start, wait for, signal and stop Lynx processes: the one module the CLI, the tests and the benches use."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

STOP_GRACE_S = 5.0
READY_TIMEOUT_S = 60.0
SERVICES = ("sampler", "telemetry", "scheduler", "gateway")

Probe = Callable[[], bool]


class StackError(RuntimeError):
    """A process failed to start, exited, or did not become ready in time."""


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def grpc_serving(addr: str) -> Probe:
    """True once the gRPC server at `addr` answers its health check with SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def probe() -> bool:
        with grpc.insecure_channel(addr) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    return probe


def http_ok(url: str) -> Probe:
    """True once GET `url` answers 200 (the gateway's /healthz)."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as reply:
                return reply.status == 200
        except OSError:
            return False

    return probe


def log_says(path: Path, text: str) -> Probe:
    """True once `text` appears in the log at `path` (e.g. `lynx up`'s "Lynx is up")."""

    def probe() -> bool:
        try:
            return text in path.read_text(errors="replace")
        except OSError:
            return False

    return probe


def runner_online_via_gateway(gateway_url: str, runner_id: str) -> Probe:
    """True once the gateway lists `runner_id` as Online."""
    from lynx.scheduler.v1 import scheduler_service_pb2 as pb
    from lynx_common.names import RUNNER_STATUS

    online = RUNNER_STATUS.name(pb.RUNNER_STATUS_ONLINE)
    url = f"{gateway_url.rstrip('/')}/runners/{runner_id}"

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as reply:
                return json.load(reply)["status"] == online
        except (OSError, ValueError, KeyError):
            return False

    return probe


def runner_online_via_scheduler(scheduler_addr: str, runner_id: str) -> Probe:
    """True once the scheduler's GetRunner says `runner_id` is online."""
    import grpc

    from lynx.scheduler.v1 import scheduler_service_pb2 as pb
    from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc

    def probe() -> bool:
        with grpc.insecure_channel(scheduler_addr) as channel:
            try:
                reply = pb_grpc.SchedulerServiceStub(channel).GetRunner(
                    pb.GetRunnerRequest(runner_id=runner_id), timeout=2.0)
            except grpc.RpcError:
                return False
        return reply.runner.status == pb.RUNNER_STATUS_ONLINE

    return probe


def wait_until(probe: Probe, what: str, timeout: float = READY_TIMEOUT_S, watch: Iterable[Process] = (),
               interval: float = 0.1) -> None:
    """Poll `probe` until true; StackError naming `what` on timeout, at once if a watched process exits."""
    watch = list(watch)
    deadline = time.monotonic() + timeout
    while True:
        for process in watch:
            process.check()
        if probe():
            return
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not become ready within {timeout:.0f} s")
        time.sleep(interval)



@dataclass
class Process:
    """One child process: spawned in its own session (signals reach everything it starts that stays
    in it), stdout and stderr appended to `log`, `env` laid over os.environ, and `stop_signal` sent
    to it if this process (strictly: the thread that started it) dies, even by SIGKILL (Linux)."""

    name: str
    argv: list[str]
    log: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    stop_signal: int = signal.SIGTERM
    ready: Probe | None = None
    popen: subprocess.Popen | None = field(default=None, init=False, repr=False)
    stopping: bool = field(default=False, init=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def start(self) -> Process:
        """Spawn it (again, after an exit); returns self."""
        if self.running():
            raise StackError(f"{self.name} is already running (pid {self.popen.pid})")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = None if self.env is None else {**os.environ, **self.env}
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                _die_with_parent(self.argv, self.stop_signal), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, cwd=self.cwd, start_new_session=True,
            )
        self.stopping = False
        return self

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        """Raise StackError if it exited without being asked to."""
        if self.popen is not None and not self.stopping and self.popen.poll() is not None:
            raise StackError(f"{self.name} exited with code {self.popen.returncode}; "
                             f"last lines of {self.log}:\n{tail(self.log)}")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, watch: Iterable[Process] = ()) -> None:
        """Wait for its `ready` probe (if any), failing at once if it or a watched process exits."""
        if self.ready is not None:
            wait_until(self.ready, self.name, timeout, [self, *watch])

    def signal(self, sig: int) -> None:
        """Send `sig` to its process group (SIGSTOP freezes it, SIGCONT wakes it)."""
        if self.popen is not None:
            self.stopping |= sig in (signal.SIGKILL, self.stop_signal, signal.SIGTERM, signal.SIGINT)
            _signal_group(self.popen, sig)

    def kill(self) -> None:
        """SIGKILL its process group and reap it (a host dying)."""
        self.stop(grace=0)

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Ask it to stop (`stop_signal`), SIGKILL it after `grace` s; grace 0 is SIGKILL at once."""
        stop_all([self], grace)


def stop_all(processes: Iterable[Process], grace: float = STOP_GRACE_S) -> None:
    """Send each its stop signal (in the order given), wait up to `grace` s in all, SIGKILL the rest."""
    running = [p for p in processes if p.running()]
    for p in running:
        p.signal(signal.SIGKILL if grace <= 0 else p.stop_signal)
    deadline = time.monotonic() + grace
    for p in running:
        try:
            p.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(p.popen, signal.SIGKILL)
            p.popen.wait()


# Sets PR_SET_PDEATHSIG, then execs the real command (same pid). A trampoline rather than a
# preexec_fn: preexec_fn forces fork(), whose handlers abort a child of a process with live gRPC channels.
_TRAMPOLINE = """import ctypes, os, sys
ctypes.CDLL(None, use_errno=True).prctl(1, int(sys.argv[1]))
if os.getppid() != int(sys.argv[2]):
    os._exit(1)
os.execvp(sys.argv[3], sys.argv[3:])
"""


def _die_with_parent(argv: list[str], sig: int) -> list[str]:
    """`argv` made to receive `sig` when this process dies (Linux; unchanged elsewhere)."""
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-I", "-S", "-c", _TRAMPOLINE, str(int(sig)), str(os.getpid()), *argv]


def _signal_group(popen: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)



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
    def sampler_addr(self) -> str:
        return f"127.0.0.1:{self.sampler}"

    @property
    def telemetry_addr(self) -> str:
        return f"127.0.0.1:{self.telemetry}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.http}"


@dataclass
class Runner:
    """A lynx-runner of a stack: its id, display name, config file, extra env and extra arguments."""

    runner_id: str
    name: str = ""
    config: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)


class Stack:
    """Any subset of sampler, telemetry, scheduler and gateway, plus runners, each its own process.

    `ports` default to free ones. `runners` is a count (local-runner-01, ... with `runner_config`)
    or a list of Runner. Processes are built here and started by start(): edit
    `stack.processes[name]` (argv, env) before that to wrap one (a profiler). Without a sampler,
    pass `sampler_addr`. Runners are ready once the gateway (else the scheduler) lists them Online."""

    def __init__(self, data_dir: Path, ports: Ports | None = None, runners: int | Iterable[Runner] = 0,
                 runner_config: Path | None = None, *, services: Iterable[str] = SERVICES,
                 sampler_addr: str | None = None, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 ready_timeout: float = READY_TIMEOUT_S, stop_grace: float = STOP_GRACE_S,
                 artifact_store: str | None = None) -> None:
        self.artifact_store = artifact_store  # the scheduler's --artifact-store (default <data_dir>/artifacts)
        self.data_dir = Path(data_dir).absolute()
        self.logs = self.data_dir / "logs"
        self.ports = (ports or Ports(0, 0, 0, 0)).resolved()
        self.services = tuple(services)
        unknown = set(self.services) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; choose from {SERVICES}")
        self.sampler_addr = self.ports.sampler_addr if "sampler" in self.services else sampler_addr
        if "scheduler" in self.services and not self.sampler_addr:
            raise ValueError("a scheduler without a sampler needs sampler_addr")
        self.runner_config = runner_config
        self.env = dict(env or {})
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self.processes = {name: self._service(name) for name in SERVICES if name in self.services}
        if isinstance(runners, int):
            runners = [Runner(f"local-runner-{i:02d}", f"Local Runner {i:02d}") for i in range(1, runners + 1)]
        self.processes.update((r.runner_id, self.runner_process(r)) for r in runners)

    def _service(self, name: str) -> Process:
        p, data = self.ports, str(self.data_dir)
        argv, ready = {
            "sampler": (["lynx_sampler.server", "--port", str(p.sampler)], grpc_serving(p.sampler_addr)),
            "telemetry": (["lynx_telemetry.server", "--port", str(p.telemetry), "--data-dir", data],
                          grpc_serving(p.telemetry_addr)),
            "scheduler": (["lynx_scheduler.server", "--port", str(p.scheduler), "--data-dir", data,
                           "--sampler-addr", str(self.sampler_addr),
                           *(["--artifact-store", self.artifact_store] if self.artifact_store else [])],
                          grpc_serving(p.scheduler_addr)),
            "gateway": (["lynx_gateway.server", "--port", str(p.http), "--scheduler-addr", p.scheduler_addr,
                         "--telemetry-addr", p.telemetry_addr], http_ok(f"{p.gateway_url}/healthz")),
        }[name]
        return Process(name, [sys.executable, "-m", *argv], self.logs / f"{name}.log", self.env or None, self.cwd,
                       ready=ready)

    def runner_process(self, runner: Runner) -> Process:
        """The process of one runner: it reaches this stack's scheduler and telemetry-ingest, and stops
        at once (SIGINT: its jobs are killed, not drained) when the stack stops."""
        argv = [sys.executable, "-m", "lynx_runner.main", "--runner-id", runner.runner_id,
                "--name", runner.name or runner.runner_id]
        config = runner.config or self.runner_config
        if config is not None:
            argv += ["--config", str(config)]
        env = {**self.env, "LYNX_SCHEDULER_ADDR": self.ports.scheduler_addr,
               "LYNX_TELEMETRY_ADDR": self.ports.telemetry_addr, **runner.env}
        if "gateway" in self.services:
            ready = runner_online_via_gateway(self.ports.gateway_url, runner.runner_id)
        else:
            ready = runner_online_via_scheduler(self.ports.scheduler_addr, runner.runner_id)
        return Process(runner.runner_id, [*argv, *runner.args], self.logs / f"{runner.runner_id}.log", env,
                       self.cwd, signal.SIGINT, ready)

    def __getitem__(self, name: str) -> Process:
        try:
            return self.processes[name]
        except KeyError:
            raise StackError(f"no process named {name!r} in this stack ({', '.join(self.processes)})") from None

    def start(self) -> None:
        """Spawn every process not yet started, then wait until each is ready; on failure stop all."""
        try:
            for process in self.processes.values():
                if process.popen is None:
                    process.start()
            for process in self.processes.values():
                process.wait_ready(self.ready_timeout, self.processes.values())
        except BaseException:
            self.stop()
            raise

    def add(self, process: Process, wait: bool = True) -> Process:
        """Start one more process beside the stack (a runner, `lynx up`, ...); wait until it is ready."""
        if process.name in self.processes and self.processes[process.name].running():
            raise StackError(f"{process.name} is already running")
        self.processes[process.name] = process.start()
        if wait:
            process.wait_ready(self.ready_timeout, self.processes.values())
        return process

    def add_runner(self, runner: Runner, wait: bool = True) -> Process:
        """Start one more runner; wait until it is online."""
        return self.add(self.runner_process(runner), wait)

    def signal(self, name: str, sig: int) -> None:
        """Send `sig` to one process's group (SIGSTOP/SIGCONT to freeze and wake it)."""
        self[name].signal(sig)

    def kill(self, name: str) -> None:
        """SIGKILL one process's group and reap it."""
        self[name].kill()

    def restart(self, name: str, wait: bool = True) -> None:
        """Stop one process if it runs (SIGKILL), start it again on the same ports and data, wait."""
        process = self[name]
        process.kill()
        process.start()
        if wait:
            process.wait_ready(self.ready_timeout, self.processes.values())

    def watch(self) -> None:
        """Raise StackError if any process exited without being asked to."""
        for process in self.processes.values():
            process.check()

    def stop(self, grace: float | None = None) -> None:
        """Stop every process, last started first (runners before the scheduler, so their jobs die with
        them); SIGKILL what is left after `grace` s (default stop_grace; 0 kills at once)."""
        stop_all(reversed(list(self.processes.values())), self.stop_grace if grace is None else grace)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Starting a job's process: cold (a fresh exec) or warm (forked by the fork server), same contract.

Both give a `JobProcess`: the pid of the leader of the job's own session/process group, and
`wait()` for its exit code (negative = killed by that signal). The runner kills the job by
SIGKILLing that group (`kill_group`), whichever way it was started.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import resource
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lynx_runner.orphans import stat_fields, with_death_signal

log = logging.getLogger(__name__)
FORKSERVER_SCRIPT = Path(__file__).with_name("forkserver.py")
READY_TIMEOUT_S = 120.0
SPAWN_TIMEOUT_S = 30.0


@dataclass
class LaunchSpec:
    """One job's process: what to run, where, with which environment and output pipes."""

    job_id: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    stdout_fd: int
    stderr_fd: int
    memory_limit: int = 0  # bytes of RLIMIT_DATA; 0 = none
    entrypoint: str | None = None  # a Python entrypoint the fork server can run as __main__


class LaunchError(Exception):
    """The job's process could not be started."""


class ForkServerError(LaunchError):
    """The fork server is not running or could not be started."""


def kill_group(pid: int) -> None:
    """SIGKILL the job's process group; the leader itself if the group does not exist yet."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    except PermissionError:
        pass


def apply_memory_limit(pid: int, limit: int) -> None:
    """Set RLIMIT_DATA on a started process (Linux prlimit); a host that refuses is logged."""
    if limit <= 0:
        return
    try:
        resource.prlimit(pid, resource.RLIMIT_DATA, (limit, limit))
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("cannot set a memory limit on pid %d: %s", pid, exc)


class JobProcess(Protocol):
    """A started job: its group leader's pid and, once it ended, its exit code."""

    pid: int
    warm: bool
    lost: bool  # the exit status was lost (the fork server died); the job was killed

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int:
        """The exit code, negative for a signal."""
        ...


class ColdProcess:
    """A job started by exec, a child of the runner."""

    warm = False

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.lost = False

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def wait(self) -> int:
        """The exit code, once the process has exited."""
        return await self._proc.wait()


async def spawn_cold(spec: LaunchSpec) -> ColdProcess:
    """Exec `spec.argv` in a new session with the job's environment, cwd and pipes (no shell)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *with_death_signal(spec.argv, spec.cwd, spec.env), cwd=spec.cwd, env=spec.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=spec.stdout_fd, stderr=spec.stderr_fd, start_new_session=True,
        )
    except OSError as exc:
        raise LaunchError(f"cannot start {spec.argv[0]}: {exc}") from exc
    apply_memory_limit(proc.pid, spec.memory_limit)
    return ColdProcess(proc)


@dataclass
class WarmProcess:
    """A job forked by the fork server; its exit code is reaped there and relayed here."""

    pid: int
    exited: asyncio.Future
    warm: bool = True
    lost: bool = False
    returncode: int | None = field(default=None)

    async def wait(self) -> int:
        """The exit code; if the fork server dies first, the job is killed and reported lost (-9)."""
        if self.returncode is not None:
            return self.returncode
        try:
            self.returncode = await asyncio.shield(self.exited)
        except ForkServerError:
            self.lost = True
            kill_group(self.pid)
            while _alive(self.pid):
                await asyncio.sleep(0.05)
            self.returncode = -signal.SIGKILL
        return self.returncode


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


class ForkServer:
    """The runner's handle on one fork-server child: start, spawn jobs, notice its death, close."""

    def __init__(self, python: str, preload: tuple[str, ...], log_path: Path, env: dict[str, str] | None = None,
                 warm_up: Path | None = None, cwd: Path | None = None, entrypoint: str = ""):
        self.python = python
        self.preload = preload
        self.warm_up = warm_up
        self.cwd = cwd
        self.entrypoint = entrypoint
        self.log_path = log_path
        self.env = env
        self.preloaded: list[str] = []
        self.failed: dict[str, str] = {}
        self.learned: list[str] = []  # preload "auto": modules jobs imported, since imported in the server
        self.rejected: list[str] = []
        self._sock: socket.socket | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future | None = None
        self._pids: dict[str, asyncio.Future] = {}
        self._exits: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)

    @property
    def alive(self) -> bool:
        return self._sock is not None

    async def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start the server and wait until it has preloaded its modules; ForkServerError if it cannot."""
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.log_path.open("ab") as log_file:
                self._proc = await asyncio.create_subprocess_exec(
                    self.python, str(FORKSERVER_SCRIPT), "--fd", str(theirs.fileno()),
                    "--warm-up", str(self.warm_up or ""), "--entrypoint", self.entrypoint,
                    *(["--learn"] if "auto" in self.preload else []),
                    "--preload", *self.preload,
                    stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file, cwd=self.cwd,
                    pass_fds=(theirs.fileno(),), start_new_session=True, env=self.env,
                )
        except OSError as exc:
            ours.close()
            raise ForkServerError(f"cannot start the fork server with {self.python}: {exc}") from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_readable)
        try:
            hello = await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except (TimeoutError, ForkServerError) as exc:
            await self.close()
            reason = exc or "timeout"
            raise ForkServerError(f"the fork server did not become ready ({reason}); see {self.log_path}") from None
        except asyncio.CancelledError:
            await self.close()  # the runner is stopping while the server preloads: leave nothing behind
            raise
        self.preloaded = hello.get("preloaded", [])
        self.failed = hello.get("failed", {})
        for name, error in self.failed.items():
            log.warning("fork server could not preload %s: %s", name, error)
        if hello.get("os_threads", 1) > 1:
            log.info("fork server has %d OS threads after preloading (from native libraries)", hello["os_threads"])
        log.info("fork server pid %d ready; preloaded %s", self._proc.pid, ", ".join(self.preloaded) or "nothing")

    def _on_readable(self) -> None:
        while self._sock is not None:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._died()
                return
            self._dispatch(json.loads(data))

    def _dispatch(self, message: dict) -> None:
        if "ready" in message:
            if self._ready is not None and not self._ready.done():
                if message["ready"]:
                    self._ready.set_result(message)
                else:
                    self._ready.set_exception(ForkServerError("; ".join(message.get("failed", {}).values())))
            return
        if "learned" in message:
            self._learned(message)
            return
        job = message.get("id")
        if "pid" in message:
            future = self._pids.pop(job, None)
            if future is not None and not future.done():
                future.set_result(int(message["pid"]))
        elif "error" in message:
            future = self._pids.pop(job, None)
            self._exits.pop(job, None)
            if future is not None and not future.done():
                future.set_exception(LaunchError(f"fork server: {message['error']}"))
        elif "returncode" in message:
            future = self._exits.pop(job, None)
            if future is not None and not future.done():
                future.set_result(int(message["returncode"]))

    def _learned(self, message: dict) -> None:
        """The fork server imported (or rejected) modules that jobs imported."""
        self.learned += message["learned"]
        self.rejected += message.get("rejected", [])
        if message["learned"]:
            log.info("fork server learned %d preloads (%d in all)", len(message["learned"]), len(self.learned))
        if message.get("rejected"):
            log.warning("fork server rejected learned preloads (they start threads or import grpc): %s",
                        ", ".join(message["rejected"][:20]))
        for name, error in message.get("failed", {}).items():
            log.warning("fork server could not preload learned module %s: %s", name, error)

    def _died(self) -> None:
        """The socket closed: every waiter learns the server is gone."""
        if self._sock is None:
            return
        with contextlib.suppress(ValueError, RuntimeError):
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        error = ForkServerError("the fork server exited")
        for future in [self._ready, *self._pids.values(), *self._exits.values()]:
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: nobody may be waiting on it
        self._pids.clear()
        self._exits.clear()
        if self._ready is not None and self._ready.done() and self._ready.exception() is None:
            log.warning("the fork server (pid %s) exited; see %s", self._proc.pid if self._proc else "?", self.log_path)

    async def spawn(self, spec: LaunchSpec) -> WarmProcess:
        """Fork a job running `spec.entrypoint` as __main__; LaunchError if the server cannot."""
        if self._sock is None or spec.entrypoint is None:
            raise ForkServerError("the fork server is not running")
        loop = asyncio.get_running_loop()
        key = f"{spec.job_id}#{next(self._ids)}"
        pid_future, exit_future = loop.create_future(), loop.create_future()
        self._pids[key], self._exits[key] = pid_future, exit_future
        request = {"id": key, "entrypoint": spec.entrypoint, "cwd": str(spec.cwd), "env": spec.env,
                   "memory_limit": spec.memory_limit}
        try:
            socket.send_fds(self._sock, [json.dumps(request).encode()], [spec.stdout_fd, spec.stderr_fd])
        except OSError as exc:
            self._pids.pop(key, None)
            self._exits.pop(key, None)
            raise ForkServerError(f"cannot reach the fork server: {exc}") from exc
        try:
            pid = await asyncio.wait_for(asyncio.shield(pid_future), SPAWN_TIMEOUT_S)
        except TimeoutError:
            raise ForkServerError("the fork server did not answer") from None
        return WarmProcess(pid=pid, exited=exit_future)

    async def close(self) -> None:
        """Close the socket (the server exits on EOF) and reap the server."""
        if self._sock is not None:
            sock, self._sock = self._sock, None
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()
        if self._proc is not None and self._proc.returncode is None:
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                kill_group(self._proc.pid)
                await self._proc.wait()

    def kill(self) -> None:
        """SIGKILL the server itself (tests and emergencies); its running jobs are reported lost."""
        if self._proc is not None and self._proc.returncode is None:
            kill_group(self._proc.pid)

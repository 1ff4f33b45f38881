"""The whole stack as a user starts it: `lynx up` plus `lynx-runner` processes, driven over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from lynx_cli.stack import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TERMINAL = ("Completed", "Failed", "Cancelled")


@dataclass
class Http:
    base: str

    def call(self, method: str, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, object]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as reply:
                return reply.status, json.load(reply)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def raw(self, path: str) -> tuple[int, dict, bytes]:
        """GET a non-JSON body: (status, headers, bytes)."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=60) as reply:
                return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    def raw_post(self, path: str, body: object) -> tuple[int, dict, bytes]:
        """POST JSON, read a non-JSON body: (status, headers, bytes)."""
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as reply:
                return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    def text(self, path: str) -> str:
        status, _, body = self.raw(path)
        assert status == 200, (path, status, body[:500])
        return body.decode()

    def get(self, path: str) -> object:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body

    def post(self, path: str, body: object) -> object:
        status, reply = self.call("POST", path, body)
        assert status == 200, (path, status, reply)
        return reply

    def wait_batch(self, batch_id: str, timeout: float = 240.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.get(f"/batches/{batch_id}")
            if status["batch"]["status"] in TERMINAL:
                return status
            time.sleep(0.5)
        raise AssertionError(f"batch {batch_id} not finished after {timeout} s: {status}")


@dataclass
class Stack:
    http: Http
    output_root: Path
    scheduler_addr: str
    telemetry_addr: str


def _start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _wait_up(log: Path, up: subprocess.Popen) -> None:
    """`lynx up` prints "Lynx is up" once every service answers its health check."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "Lynx is up" in log.read_text(errors="replace"):
            return
        if up.poll() is not None:
            raise AssertionError(f"lynx up exited {up.returncode}:\n{log.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"lynx up never reported ready:\n{log.read_text()}")


def _wait_runner(http: Http, runner_id: str, procs: list[subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{p.args} exited {p.returncode}; logs in {logs}")
        try:
            status, body = http.call("GET", f"/runners/{runner_id}")
        except OSError:
            status = 0
        if status == 200 and body["status"] == "Online":
            return
        time.sleep(0.2)
    raise AssertionError(f"runner {runner_id} never came online; logs in {logs}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    """`lynx up` with one local runner, the tutorial's basilisk-runner-01, and a runner whose scenario always fails."""
    root = tmp_path_factory.mktemp("stack")
    output_root = root / "runs"
    ports = {name: free_port() for name in ("http", "scheduler", "sampler", "telemetry")}
    scheduler_addr = f"127.0.0.1:{ports['scheduler']}"
    telemetry_addr = f"127.0.0.1:{ports['telemetry']}"
    env = {
        **os.environ,
        "LYNX_RUNNER_OUTPUT_ROOT": str(output_root),
        "LYNX_SCHEDULER_ADDR": scheduler_addr,
        "LYNX_TELEMETRY_ADDR": telemetry_addr,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    up = _start(
        [str(BIN / "lynx"), "up", "--data-dir", str(root / "data"), "--http-port", str(ports["http"]),
         "--scheduler-port", str(ports["scheduler"]), "--sampler-port", str(ports["sampler"]),
         "--telemetry-port", str(ports["telemetry"]), "--runners", "1",
         "--runner-config", "configs/lynx-runner-basilisk.yaml"],
        env, root / "lynx-up.log",
    )
    runner = _start(
        [str(BIN / "lynx-runner"), "--config", "configs/lynx-runner-basilisk.yaml",
         "--runner-id", "basilisk-runner-01", "--name", "Basilisk Runner 01"],
        env, root / "basilisk-runner-01.log",
    )
    failing = _start(
        [str(BIN / "lynx-runner"), "--config", "configs/lynx-runner-basilisk.yaml",
         "--runner-id", "failing-runner", "--name", "Always Failing"],
        {**env, "LYNX_RUNNER_CAPABILITIES": "always-fails",
         "LYNX_RUNNER_BASILISK_ENTRYPOINT": "tests/e2e/scenarios/exit_one.py"},
        root / "failing-runner.log",
    )
    procs = [up, runner, failing]
    http = Http(f"http://127.0.0.1:{ports['http']}")
    try:
        _wait_up(root / "lynx-up.log", up)
        for runner_id in ("basilisk-runner-01", "failing-runner", "local-runner-01"):
            _wait_runner(http, runner_id, procs, root)
        yield Stack(http, output_root, scheduler_addr, telemetry_addr)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def tutorial_body() -> dict:
    """The tutorial's POST /jobs body, verbatim."""
    return json.loads((Path(__file__).parent / "tutorial_body.json").read_text())

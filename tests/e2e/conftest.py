"""The whole stack as a user starts it: `lynx up` plus `lynx-runner` processes, driven over HTTP."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_cli import stack as lynx_stack
from lynx_common.names import BATCH_STATUS

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TERMINAL = tuple(BATCH_STATUS.name(s) for s in (pb.BATCH_STATUS_COMPLETED, pb.BATCH_STATUS_FAILED,
                                                pb.BATCH_STATUS_CANCELLED))


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


def _command(name: str, argv: list[str], env: dict, root: Path, **kw) -> lynx_stack.Process:
    """A documented command run from the repository, stopped with Ctrl-C (SIGINT) as a user would."""
    return lynx_stack.Process(name, argv, root / f"{name}.log", env, REPO, signal.SIGINT, **kw)


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    """`lynx up` with one local runner, the tutorial's basilisk-runner-01, and a runner whose scenario always fails."""
    root = tmp_path_factory.mktemp("stack")
    output_root = root / "runs"
    # The processes below are the user's commands; this Stack only holds them (and their ports).
    procs = lynx_stack.Stack(root, lynx_stack.Ports(0, 0, 0, 0), services=(), ready_timeout=120, stop_grace=15)
    ports = procs.ports
    http = Http(ports.gateway_url)
    env = {
        "LYNX_RUNNER_OUTPUT_ROOT": str(output_root),
        "LYNX_SCHEDULER_ADDR": ports.scheduler_addr,
        "LYNX_TELEMETRY_ADDR": ports.telemetry_addr,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    runner = [str(BIN / "lynx-runner"), "--config", "configs/lynx-runner-basilisk.yaml"]
    failing = {"LYNX_RUNNER_CAPABILITIES": "always-fails",
               "LYNX_RUNNER_BASILISK_ENTRYPOINT": "tests/e2e/scenarios/exit_one.py"}
    try:
        procs.add(_command(
            "lynx-up",
            [str(BIN / "lynx"), "up", "--data-dir", str(root / "data"), "--http-port", str(ports.http),
             "--scheduler-port", str(ports.scheduler), "--sampler-port", str(ports.sampler),
             "--telemetry-port", str(ports.telemetry), "--runners", "1",
             "--runner-config", "configs/lynx-runner-basilisk.yaml"],
            env, root, ready=lynx_stack.log_says(root / "lynx-up.log", "Lynx is up"),
        ), wait=False)
        for runner_id, name, extra in (
            ("basilisk-runner-01", "Basilisk Runner 01", {}),
            ("failing-runner", "Always Failing", failing),
        ):
            procs.add(_command(runner_id, [*runner, "--runner-id", runner_id, "--name", name], {**env, **extra},
                               root, ready=lynx_stack.runner_online_via_gateway(http.base, runner_id)), wait=False)
        procs.start()  # waits for "Lynx is up", then each runner Online
        lynx_stack.wait_until(lynx_stack.runner_online_via_gateway(http.base, "local-runner-01"), "local-runner-01",
                              procs.ready_timeout, procs.processes.values())
        yield Stack(http, output_root, ports.scheduler_addr, ports.telemetry_addr)
    finally:
        procs.stop()


@pytest.fixture
def tutorial_body() -> dict:
    """The tutorial's POST /jobs body, verbatim."""
    return json.loads((Path(__file__).parent / "tutorial_body.json").read_text())

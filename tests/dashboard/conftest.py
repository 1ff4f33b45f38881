"""A small real stack for the dashboard tests: `lynx up` with one local runner, driven over HTTP."""

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

from lynx_cli import stack as lynx_stack

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TERMINAL = ("Completed", "Failed", "Cancelled")


@dataclass
class Http:
    base: str
    scheduler_addr: str = ""
    telemetry_addr: str = ""

    def request(self, method: str, path: str, body: object = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=60) as reply:
                return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    def html(self, path: str) -> str:
        status, headers, body = self.request("GET", path, headers={"accept": "text/html"})
        assert status == 200, (path, status, body[:500])
        assert headers["content-type"].startswith("text/html"), headers
        return body.decode()

    def json(self, method: str, path: str, body: object = None) -> object:
        status, _, data = self.request(method, path, body)
        assert status == 200, (path, status, data[:500])
        return json.loads(data)

    def submit(self, body: dict) -> str:
        return self.json("POST", "/jobs", body)["batch_id"]

    def wait(self, batch_id: str, timeout: float = 180.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.json("GET", f"/batches/{batch_id}")
            if status["batch"]["status"] in TERMINAL:
                return status
            time.sleep(0.3)
        raise AssertionError(f"batch {batch_id} not finished after {timeout} s")


@pytest.fixture(scope="session")
def http(tmp_path_factory) -> Http:
    root = tmp_path_factory.mktemp("dash")
    procs = lynx_stack.Stack(root, lynx_stack.Ports(0, 0, 0, 0), services=(), ready_timeout=120, stop_grace=15)
    ports = procs.ports
    env = {"LYNX_RUNNER_OUTPUT_ROOT": str(root / "runs"), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    up = lynx_stack.Process(
        "lynx-up",
        [str(BIN / "lynx"), "up", "--data-dir", str(root / "data"), "--http-port", str(ports.http),
         "--scheduler-port", str(ports.scheduler), "--sampler-port", str(ports.sampler),
         "--telemetry-port", str(ports.telemetry), "--runners", "1",
         "--runner-config", "configs/lynx-runner-basilisk.yaml"],
        root / "lynx-up.log", env, REPO, signal.SIGINT, ready=lynx_stack.log_says(root / "lynx-up.log", "Lynx is up"))
    try:
        procs.add(up, wait=False)
        procs.start()
        lynx_stack.wait_until(lynx_stack.runner_online_via_gateway(ports.gateway_url, "local-runner-01"),
                              "local-runner-01", 120, procs.processes.values())
        yield Http(ports.gateway_url, ports.scheduler_addr, ports.telemetry_addr)
    finally:
        procs.stop()


@pytest.fixture
def study() -> dict:
    """The tutorial's POST /jobs body with short runs (a quarter orbit, sparse telemetry)."""
    body = json.loads((REPO / "tests/e2e/tutorial_body.json").read_text())
    body["config"]["dispersions"]["duration_orbits"]["distribution"].update(min=0.05, max=0.06)
    return body

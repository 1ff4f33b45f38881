"""Ready means ready: a submission the moment `lynx up` says it is up succeeds; --limit reaches the services."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from http_client import call

from lynx_cli.stack import free_port

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
TUTORIAL = json.loads((REPO / "tests" / "e2e" / "tutorial_body.json").read_text())


def test_submit_right_after_lynx_up_says_up_succeeds(tmp_path):
    http = free_port()
    ports = [str(free_port()) for _ in range(3)]
    up = subprocess.Popen(
        [str(Path(sys.executable).parent / "lynx"), "up", "--data-dir", str(tmp_path / "data"), "--http-port",
         str(http), "--scheduler-port", ports[0], "--sampler-port", ports[1], "--telemetry-port", ports[2],
         "--runners", "0", "--limit", "page_size=2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=os.environ.copy(),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        for line in up.stdout:
            if "Lynx is up" in line:
                said_up = time.monotonic()
                break
            assert time.monotonic() < deadline, "lynx up never said it is up"
        else:
            raise AssertionError(f"lynx up exited with {up.wait()}")
        body = copy.deepcopy(TUTORIAL)
        body["runs_override"] = 3
        base = f"http://127.0.0.1:{http}"
        sent = time.monotonic()
        code, _, reply = call(base, "POST", "/jobs", body)
        assert sent - said_up < 0.1  # within 100 ms of "up"
        assert code == 200, reply
        assert call(base, "GET", "/readyz")[:1] == (200,)
        page = call(base, "GET", f"/batches/{reply['batch_id']}/jobs")[2]  # --limit reached the gateway
        assert len(page["jobs"]) == 2 and page["next_page_token"]
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()

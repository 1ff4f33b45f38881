"""The gateway's limits on the real stack: each refused with the documented JSON error; the stack still serves."""

from __future__ import annotations

import copy
import json
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from http_client import assert_error, call

from lynx_cli import stack as lynx_stack

pytestmark = pytest.mark.e2e
TUTORIAL = json.loads((Path(__file__).parents[1] / "e2e" / "tutorial_body.json").read_text())
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """Sampler, scheduler, telemetry and gateway, no runner; two live streams per client, and room for
    the tutorial's dispersions and no more."""
    env = {"LYNX_LIMIT_STREAMS_PER_CLIENT": "2", "LYNX_LIMIT_DISPERSIONS": str(len(TUTORIAL["config"]["dispersions"]))}
    with lynx_stack.Stack(tmp_path_factory.mktemp("limits"), lynx_stack.Ports(0, 0, 0, 0), env=env, cwd=REPO) as s:
        yield s.ports.gateway_url


def _body(runs: int = 2, **changes) -> dict:
    body = copy.deepcopy(TUTORIAL)
    body["runs_override"] = runs
    body.update(changes)
    return body


def test_aiohttp_errors_are_json(gateway):
    assert_error(call(gateway, "GET", "/no/such/route"), 404, says="no such route")
    assert_error(call(gateway, "DELETE", "/jobs"), 405, says="DELETE is not allowed")
    too_big = b"x" * (16 * 1024 * 1024 + 1)
    assert_error(call(gateway, "POST", "/jobs", raw=too_big), 413, says="LYNX_LIMIT_HTTP_BODY_BYTES")
    assert call(gateway, "GET", "/healthz")[0] == 200


def test_integers_out_of_range_name_their_field(gateway):
    assert_error(call(gateway, "GET", "/batches?limit=2147483648"), 400, "limit")
    assert_error(call(gateway, "GET", f"/jobs/x/telemetry?start_ns={2**63}"), 400, "start_ns")
    assert_error(call(gateway, "POST", "/jobs", _body(runs=2**63)), 400, "runs_override")


def test_deep_json_and_long_strings_are_refused(gateway):
    deep = "[" * 1000 + "]" * 1000
    assert_error(call(gateway, "POST", "/jobs", raw=deep.encode()), 400, "body", says="LYNX_LIMIT_JSON_DEPTH")
    nested = _body()
    nested["config"]["simulation"]["x"] = json.loads("[" * 40 + "]" * 40)
    assert_error(call(gateway, "POST", "/jobs", nested), 400, "body", says="nested deeper")
    assert_error(call(gateway, "POST", "/jobs", _body(name="n" * 10_000_000)), 400, "name",
                 says="LYNX_LIMIT_STRING_CHARS")
    assert_error(call(gateway, "POST", "/jobs", _body(name="n" * 300)), 400, "name", says="LYNX_LIMIT_NAME_CHARS")
    assert call(gateway, "GET", "/batches")[0] == 200  # and keeps working


def test_too_many_dispersions(gateway):
    body = _body()
    body["config"]["dispersions"].update({f"extra_{i}": {"distribution": {"type": "uniform", "min": 0, "max": 1}}
                                          for i in range(2)})
    code, _, reply = call(gateway, "POST", "/jobs", body)
    assert code == 400 and reply["error"]["field"].endswith("dispersions"), reply
    assert "LYNX_LIMIT_DISPERSIONS" in reply["error"]["message"]


def test_job_listing_pages_and_keeps_the_tutorial_shape(gateway):
    batch_id = call(gateway, "POST", "/jobs", _body(runs=5))[2]["batch_id"]
    code, _, everything = call(gateway, "GET", f"/batches/{batch_id}/jobs")
    assert code == 200 and len(everything["jobs"]) == 5 and everything["next_page_token"] is None
    seen, token = [], ""
    while True:
        code, _, page = call(gateway, "GET", f"/batches/{batch_id}/jobs?limit=2" +
                             (f"&page_token={token}" if token else ""))
        assert code == 200 and len(page["jobs"]) <= 2
        seen += [j["run_id"] for j in page["jobs"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == [j["run_id"] for j in everything["jobs"]]
    assert_error(call(gateway, "GET", f"/batches/{batch_id}/jobs?limit=0"), 400, "limit")
    assert_error(call(gateway, "GET", f"/batches/{batch_id}/jobs?limit=10001"), 400, "limit")
    assert_error(call(gateway, "GET", f"/batches/{batch_id}/jobs?page_token=zz"), 400, "page_token")
    call(gateway, "POST", f"/batches/{batch_id}/cancel", {})


def _open_stream(gateway: str, batch_id: str, ended: list) -> threading.Thread:
    def read():
        try:
            with urllib.request.urlopen(f"{gateway}/batches/{batch_id}/telemetry/stream", timeout=30) as reply:
                reply.read()
            ended.append(time.monotonic())
        except OSError as exc:
            ended.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_live_streams_are_capped_per_client_and_end_with_their_batch(gateway):
    batch_id = call(gateway, "POST", "/jobs", _body(runs=2))[2]["batch_id"]  # no runner: it stays Pending
    ended: list = []
    threads = [_open_stream(gateway, batch_id, ended) for _ in range(2)]
    time.sleep(1.0)
    assert not ended  # both live
    assert_error(call(gateway, "GET", f"/batches/{batch_id}/telemetry/stream"), 429,
                 says="LYNX_LIMIT_STREAMS_PER_CLIENT")
    call(gateway, "POST", f"/batches/{batch_id}/cancel", {})
    for thread in threads:
        thread.join(10)
    assert len(ended) == 2 and all(isinstance(t, float) for t in ended), ended  # ended cleanly, by the server
    # A finished batch's stream ends at once, and the slots are free again.
    started = time.monotonic()
    code, _, body = call(gateway, "GET", f"/batches/{batch_id}/telemetry/stream", timeout=10)
    assert code == 200 and body in (b"", "") and time.monotonic() - started < 5


def test_rate_limit_and_readiness_without_backends(tmp_path):
    """A gateway whose backends are down: live, not ready (naming them), and rate limited per client."""
    port = lynx_stack.free_port()
    dead = f"127.0.0.1:{lynx_stack.free_port()}"
    url = f"http://127.0.0.1:{port}"
    gateway = lynx_stack.Process(
        "gateway", [sys.executable, "-m", "lynx_gateway.server", "--port", str(port), "--scheduler-addr", dead,
                    "--telemetry-addr", dead], tmp_path / "gateway.log", {"LYNX_LIMIT_REQUESTS_PER_SECOND": "20"},
        REPO, ready=lynx_stack.http_ok(f"{url}/healthz"))
    gateway.start()
    try:
        gateway.wait_ready(30)
        code, _, body = call(url, "GET", "/readyz")
        assert_error((code, _, body), 503, says="scheduler is unreachable")
        assert "telemetry is unreachable" in body["error"]["message"]
        codes = [call(url, "GET", "/runners")[0] for _ in range(100)]
        assert 429 in codes and codes.count(429) >= 40, codes
        assert_error(call(url, "GET", "/runners"), 429, says="LYNX_LIMIT_REQUESTS_PER_SECOND")
        assert call(url, "GET", "/healthz")[0] == 200  # health probes are never rate limited
        time.sleep(1.5)
        assert call(url, "GET", "/runners")[0] == 503  # the bucket refilled; the backend is what is missing
    finally:
        gateway.stop()

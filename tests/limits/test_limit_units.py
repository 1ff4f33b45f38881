"""The limits table, its docs, and the runner's own bounds, checked without a stack."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common import limits
from lynx_common.errors import ValidationError
from lynx_runner.engine import lease_memory_limit
from lynx_runner.streams import bound_result

DOCS = Path(__file__).resolve().parents[2] / "docs" / "limits.md"
GIB = 2**30


def test_every_limit_is_documented_with_its_default_and_knob():
    text = DOCS.read_text()
    for limit in limits.TABLE:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{limit.name}`")), None)
        assert row is not None, f"docs/limits.md has no row for {limit.name}"
        assert f"`{limit.env}`" in row
        assert f"{limit.default:,}" in row or str(limit.default) in row, row


def test_an_override_must_be_a_positive_whole_number(monkeypatch):
    monkeypatch.setenv("LYNX_LIMIT_JSON_DEPTH", "7")
    assert limits.value("json_depth") == 7
    monkeypatch.setenv("LYNX_LIMIT_JSON_DEPTH", "lots")
    with pytest.raises(ValueError, match="LYNX_LIMIT_JSON_DEPTH"):
        limits.value("json_depth")


def test_json_checks_name_the_path(monkeypatch):
    monkeypatch.setenv("LYNX_LIMIT_STRING_CHARS", "12")
    with pytest.raises(ValidationError) as err:
        limits.check_json({"config": {"simulation": {"name": "n" * 13}}})
    assert err.value.field == "config.simulation.name"
    with pytest.raises(ValidationError) as err:
        limits.check_json({"a": json.loads("[" * 40 + "]" * 40)})
    assert err.value.field == "body" and "LYNX_LIMIT_JSON_DEPTH" in err.value.problem


def _lease(memory_request: str) -> pb.JobLease:
    lease = pb.JobLease(job_id="j")
    if memory_request:
        lease.compute.CopyFrom(cfg.Compute(container=cfg.Container(memory_request=memory_request)))
    return lease


@pytest.mark.parametrize(("request_", "runner", "expected"), [
    ("64Gi", 2 * GIB, 2 * GIB),  # a batch never raises the operator's limit
    ("1Gi", 2 * GIB, 1 * GIB),  # but may lower it
    ("", 2 * GIB, 2 * GIB),
    ("1Gi", 0, 1 * GIB),  # no runner limit: the batch's request is the limit
])
def test_memory_request_lowers_but_never_raises_the_runners_limit(request_, runner, expected):
    assert lease_memory_limit(_lease(request_), runner) == expected


def test_an_oversized_result_is_bounded_with_a_note():
    files = [pb.OutputFile(path=f"/out/{i:06d}-{'x' * 200}", relative_path=f"{i:06d}", size_bytes=1, sha256="0" * 64)
             for i in range(50_000)]
    result = pb.JobResult(job_id="j", files=files, output_files=[f.path for f in files],
                          error_message="e" * 5_000_000)
    bounded = bound_result(result, 4 * 2**20)
    assert bounded.ByteSize() < 4 * 2**20
    assert 0 < len(bounded.files) < 50_000 and len(bounded.output_files) == len(bounded.files)
    assert any(re.search(r"listed only \d+ of its 50000 output files", n) for n in bounded.notes)
    assert bounded.error_message.endswith("[truncated]")


async def test_an_unexpected_gateway_error_is_a_json_500():
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from lynx_gateway import errors

    async def broken(request):
        raise RuntimeError("a bug")

    app = web.Application()
    errors.install(app)
    app.router.add_get("/broken", broken)
    async with TestClient(TestServer(app)) as client:
        reply = await client.get("/broken")
        assert reply.status == 500
        assert await reply.json() == {"error": {"message": "internal error in the gateway; see its log", "field": None}}
        reply = await client.post("/broken")
        assert reply.status == 405 and reply.headers["Allow"] == "GET,HEAD"
        assert (await reply.json())["error"]["message"] == "POST is not allowed on /broken"

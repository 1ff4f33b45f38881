"""The gateway's routes and its OpenAPI document agree; errors map to HTTP statuses."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lynx_gateway.openapi import SPEC
from lynx_gateway.server import build_app


@pytest.fixture
async def client():
    # No backend listens on these ports: every gRPC call fails fast with UNAVAILABLE.
    app = build_app("127.0.0.1:1", "127.0.0.1:1")
    async with TestClient(TestServer(app)) as c:
        yield c


def app_routes() -> set[tuple[str, str]]:
    app = build_app("127.0.0.1:1", "127.0.0.1:1")
    return {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD"
    }


def test_openapi_documents_exactly_the_served_routes():
    documented = {(method, path) for path, ops in SPEC["paths"].items() for method in ops}
    assert documented == app_routes()


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_openapi_refs_resolve():
    refs = set(_refs(SPEC))
    assert refs
    for ref in refs:
        _, section, kind, name = ref.split("/")
        assert name in SPEC[section][kind], ref


async def test_openapi_is_served(client):
    reply = await client.get("/openapi.json")
    assert reply.status == 200
    assert (await reply.json())["openapi"] == "3.1.0"


async def test_backend_down_is_503_with_a_message(client):
    reply = await client.get("/batches/some-id")
    assert reply.status == 503
    assert (await reply.json())["error"]["message"]


async def test_validation_happens_before_any_backend_call(client):
    reply = await client.post("/jobs", json={"name": "x", "config": {"dispersions": []}})
    assert reply.status == 400
    body = await reply.json()
    assert body["error"]["field"] == "config.dispersions"
    reply = await client.post("/jobs", json={"config": {}, "color": "red"})
    assert reply.status == 400 and (await reply.json())["error"]["field"] == "color"
    reply = await client.get("/jobs/x/telemetry?limit=lots")
    assert reply.status == 400 and (await reply.json())["error"]["field"] == "limit"

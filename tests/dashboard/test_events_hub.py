"""The events hub: one scheduler watch per batch feeds every viewer, viewers are capped, the watch stops
with the batch. A gateway in this process over the real stack's scheduler, so its hub can be inspected."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lynx_gateway.dashboard import EVENTS, events
from lynx_gateway.server import build_app

pytestmark = pytest.mark.e2e


async def read_all(response) -> list[tuple[str, dict]]:
    out, name = [], None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[6:])))
    return out


async def test_one_watch_feeds_every_viewer_and_viewers_are_capped(http, study, monkeypatch):
    monkeypatch.setattr(events, "MAX_VIEWERS_PER_BATCH", 3)
    batch_id = await asyncio.to_thread(http.submit, {**study, "runs_override": 3})
    app = build_app(http.scheduler_addr, http.telemetry_addr)
    async with TestClient(TestServer(app)) as client:
        hub = app[EVENTS]
        viewers = [await client.get(f"/batches/{batch_id}/events") for _ in range(3)]
        assert all(v.status == 200 for v in viewers)
        assert list(hub.watches) == [batch_id] and len(hub.watches[batch_id].viewers) == 3  # one watch, 3 queues
        refused = await client.get(f"/batches/{batch_id}/events")
        assert refused.status == 503 and "too many viewers" in (await refused.json())["error"]["message"]
        assert refused.headers["retry-after"] == "10"

        streams = await asyncio.wait_for(asyncio.gather(*(read_all(v) for v in viewers)), timeout=120)
        for got in streams:
            assert got[-1][0] == "end" and got[-1][1]["status"] == "Completed"
        assert streams[0] == streams[1] == streams[2]  # every viewer saw the same events
        await asyncio.sleep(0.1)
        assert hub.watches == {}  # the watch stopped with the batch

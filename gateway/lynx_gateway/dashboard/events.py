"""GET /batches/{id}/events: a batch's progress as Server-Sent Events, one scheduler watch per batch.

Events: `status` (the batch status changed), `counts` (counts, progress, throughput, ETA), `job_finished`
(one per newly finished run: job_id, run_id, status, reason) and, last, `end` (the final progress) after
which the server closes the stream. Every viewer gets the current `status` and `counts` on connect. One
watch task per batch polls GetBatch about once a second and fans out to every viewer's queue; it stops
when the batch is finished or its last viewer leaves.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import grpc
import numpy as np
from aiohttp import web

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_gateway.dashboard.data import DEADLINE_S, RunsCache, progress
from lynx_gateway.dashboard.runs import FINISHED
from lynx_gateway.errors import error_response

log = logging.getLogger(__name__)
POLL_S = 1.0
MAX_VIEWERS_PER_BATCH = 100
MAX_VIEWERS = 400
JOB_EVENTS_MAX_RUNS = 20000  # above this, job_finished events are not sent (counts still are)
KEEPALIVE_S = 15.0
QUEUE = 256

Event = tuple[str, dict]


class Watch:
    """One batch's poller and its viewers' queues."""

    def __init__(self, hub: EventsHub, batch_id: str, first: pb.Batch) -> None:
        self.hub = hub
        self.batch_id = batch_id
        self.viewers: set[asyncio.Queue[Event | None]] = set()
        self.batch = first
        self.last = progress(first)
        self.seen: set[str] | None = None  # finished job ids already announced
        self.task: asyncio.Task | None = None

    def snapshot(self) -> list[Event]:
        return [("status", _status(self.last)), ("counts", self.last)]

    def publish(self, event: Event | None) -> None:
        for q in list(self.viewers):
            if q.full():  # a viewer that does not read loses old events, never blocks the others
                q.get_nowait()
            q.put_nowait(event)

    async def _finished_jobs(self) -> list[dict]:
        if self.last["total_jobs"] > JOB_EVENTS_MAX_RUNS:
            return []
        table = await self.hub.runs.table(self.batch)
        done = np.flatnonzero(np.isin(table.columns["status"].values, FINISHED))
        job_ids = table.columns["job_id"].values
        if self.seen is None:  # the first look: what finished before anyone watched is not news
            self.seen = {job_ids[i] for i in done}
            return []
        new = [table.rows[i] for i in done if job_ids[i] not in self.seen]
        self.seen.update(r["job_id"] for r in new)
        return [{"job_id": r["job_id"], "run_id": r["run_id"], "status": r["status"], "reason": r["reason"],
                 "seconds": r["seconds"], "runner": r["runner"]} for r in new]

    async def prime(self) -> None:
        """Note the runs finished so far, then take the state every viewer starts from (in that order, so
        every run that finishes after the first `counts` is announced by a `job_finished`)."""
        if not self.last["terminal"]:
            await self._finished_jobs()
            reply = await self.hub.stub.GetBatch(pb.GetBatchRequest(batch_id=self.batch_id), timeout=DEADLINE_S)
            self.batch, self.last = reply.batch, progress(reply.batch)

    async def run(self) -> None:
        try:
            while self.viewers and not self.last["terminal"]:
                await asyncio.sleep(POLL_S)
                reply = await self.hub.stub.GetBatch(pb.GetBatchRequest(batch_id=self.batch_id), timeout=DEADLINE_S)
                self.batch, now = reply.batch, progress(reply.batch)
                if now["status"] != self.last["status"]:
                    self.publish(("status", _status(now)))
                changed = now["finished"] != self.last["finished"] or now["terminal"]
                if now["jobs_by_status"] != self.last["jobs_by_status"] or now["total_jobs"] != self.last["total_jobs"]:
                    self.publish(("counts", now))
                self.last = now
                if changed:
                    for job in await self._finished_jobs():
                        self.publish(("job_finished", job))
            self.publish(("end", self.last))
            if self.last["terminal"] and self.last["total_jobs"] > JOB_EVENTS_MAX_RUNS:
                # someone watched it finish: build its final table now, before they open the runs
                self.hub.prewarm = asyncio.create_task(self.hub.runs.table(self.batch))
        except grpc.aio.AioRpcError as exc:
            log.warning("events of batch %s: %s", self.batch_id, exc.details())
            self.publish(("error", {"message": exc.details() or exc.code().name}))
        finally:
            self.publish(None)
            self.hub.watches.pop(self.batch_id, None)


def _status(p: dict) -> dict:
    return {"batch_id": p["batch_id"], "status": p["status"], "status_message": p["status_message"]}


class EventsHub:
    """Watches by batch id; caps viewers per batch and in total."""

    def __init__(self, stub_of: Callable[[], pb_grpc.SchedulerServiceStub], runs: Callable[[], RunsCache]) -> None:
        self._stub_of = stub_of
        self._runs_of = runs
        self.watches: dict[str, Watch] = {}
        self.prewarm: asyncio.Task | None = None  # the last final-table build started for a watched batch

    @property
    def stub(self) -> pb_grpc.SchedulerServiceStub:
        return self._stub_of()

    @property
    def runs(self) -> RunsCache:
        return self._runs_of()

    def viewers(self) -> int:
        return sum(len(w.viewers) for w in self.watches.values())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        batch_id = request.match_info["id"]
        reply = await self.stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), timeout=DEADLINE_S)  # 404 early
        watch = self.watches.get(batch_id)
        if self.viewers() >= MAX_VIEWERS or (watch and len(watch.viewers) >= MAX_VIEWERS_PER_BATCH):
            return error_response(503, "too many viewers of live events; try again later",
                                  headers={"retry-after": "10"})
        queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE)
        if watch is None:
            watch = Watch(self, batch_id, reply.batch)
            await watch.prime()
            watch = self.watches.setdefault(batch_id, watch)  # another viewer may have primed one meanwhile
        watch.viewers.add(queue)
        if watch.task is None:
            watch.task = asyncio.create_task(watch.run())
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache",
                                               "x-accel-buffering": "no"})
        await response.prepare(request)
        try:
            for event in watch.snapshot():
                await _send(response, event)
            if watch.last["terminal"]:
                await _send(response, ("end", watch.last))
                return response
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if event is None:
                    break
                await _send(response, event)
        except ConnectionResetError:
            pass
        finally:
            watch.viewers.discard(queue)
        return response


async def _send(response: web.StreamResponse, event: Event) -> None:
    name, data = event
    await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

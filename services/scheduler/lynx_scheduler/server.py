"""SchedulerService over gRPC: user RPCs, the runner Connect stream, and process start-up."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from pathlib import Path

import grpc

from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_common.server import GrpcServer, client_channel, configure_logging, serve_until_signalled
from lynx_scheduler import core
from lynx_scheduler.convert import batch_to_proto, job_to_proto, runner_to_proto
from lynx_scheduler.dispatch import Dispatcher, RunnerSession
from lynx_scheduler.store import BatchRow, Report, RunnerRow, Store
from lynx_scheduler.submission import Submissions

log = logging.getLogger(__name__)
SAMPLER_DEADLINE_S = 120.0


class SchedulerServicer(pb_grpc.SchedulerServiceServicer):
    """Translates RPCs to store and dispatcher calls and sets status codes."""

    def __init__(self, store: Store, dispatcher: Dispatcher, sampler: sampler_grpc.SamplerServiceStub):
        self.store = store
        self.dispatcher = dispatcher
        self.sampler = sampler
        self.submissions = Submissions(store, dispatcher, sampler)

    # Submission, preview and extension live in lynx_scheduler.submission.
    async def SubmitBatch(self, request: pb.SubmitBatchRequest, context) -> pb.SubmitBatchResponse:
        return await self.submissions.submit(request, context)

    async def Preview(self, request: pb.PreviewRequest, context):
        async for chunk in self.submissions.preview(request, context):
            yield chunk

    async def ExtendBatch(self, request: pb.ExtendBatchRequest, context) -> pb.ExtendBatchResponse:
        return await self.submissions.extend(request, context)

    async def _batch_or_abort(self, batch_id: str, context) -> BatchRow:
        batch = await self.store.get_batch(batch_id)
        if batch is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"batch {batch_id!r} not found")
        return batch

    def _batch(self, batch: BatchRow, with_config: bool = False) -> pb.Batch:
        """The Batch proto, with a routing message when no connected runner can serve it."""
        return batch_to_proto(batch, with_config, self.dispatcher.routing_message(batch))

    async def GetBatch(self, request, context) -> pb.GetBatchResponse:
        batch = await self._batch_or_abort(request.batch_id, context)
        return pb.GetBatchResponse(batch=self._batch(batch, with_config=True))

    async def ListBatches(self, request, context) -> pb.ListBatchesResponse:
        limit = request.limit if 0 < request.limit <= 1000 else 100
        rows = await self.store.list_batches(limit)
        return pb.ListBatchesResponse(batches=[self._batch(b) for b in rows])

    async def CancelBatch(self, request, context) -> pb.CancelBatchResponse:
        """Cancel pending jobs at once and send CancelJob for running ones (they end Cancelled
        when their runner reports the kill)."""
        before = await self._batch_or_abort(request.batch_id, context)
        if core.batch_status(before.counts, before.cancelled, before.aborted) in core.TERMINAL:
            # Finished batches keep their outcome; cancelling one changes nothing.
            return pb.CancelBatchResponse(batch=self._batch(before), cancelled_jobs=0)
        pending, running = await self.store.cancel_batch(request.batch_id, time.time())
        await self.dispatcher.kill_running(request.batch_id, "batch cancelled")
        after = await self.store.get_batch(request.batch_id)
        return pb.CancelBatchResponse(batch=self._batch(after), cancelled_jobs=pending + len(running))

    async def RerunFailed(self, request, context) -> pb.RerunFailedResponse:
        """Queue a finished batch's failed jobs again: same parameters and seeds, attempt numbers
        continue, retry budget reset."""
        if not request.batch_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "batch_id is required")
        batch = await self._batch_or_abort(request.batch_id, context)
        status = core.batch_status(batch.counts, batch.cancelled, batch.aborted)
        if status not in core.TERMINAL:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"batch {request.batch_id} is {status}; only a finished batch can rerun its failed jobs",
            )
        if batch.cancelled:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"batch {request.batch_id} was cancelled; submit it again instead")
        requeued = await self.store.rerun_failed(request.batch_id, time.time())
        log.info("batch %s: %d failed jobs queued again", request.batch_id, requeued)
        self.dispatcher.wake()
        after = await self.store.get_batch(request.batch_id)
        return pb.RerunFailedResponse(batch=self._batch(after), requeued_jobs=requeued)

    async def GetBatchResults(self, request, context) -> pb.GetBatchResultsResponse:
        await self._batch_or_abort(request.batch_id, context)
        jobs = await self.store.batch_jobs(request.batch_id, tuple(core.TERMINAL))
        return pb.GetBatchResultsResponse(
            results=[pb.JobResult.FromString(j.result) for j in jobs if j.result]
        )

    async def ListJobs(self, request, context) -> pb.ListJobsResponse:
        await self._batch_or_abort(request.batch_id, context)
        jobs = await self.store.batch_jobs(request.batch_id, with_history=True)
        return pb.ListJobsResponse(jobs=[job_to_proto(j) for j in jobs])

    async def GetJob(self, request, context) -> pb.GetJobResponse:
        job = await self.store.get_job(request.job_id, with_history=True)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job {request.job_id!r} not found")
        return pb.GetJobResponse(job=job_to_proto(job))

    async def ListRunners(self, request, context) -> pb.ListRunnersResponse:
        return pb.ListRunnersResponse(runners=[runner_to_proto(r) for r in await self.store.list_runners()])

    async def GetRunner(self, request, context) -> pb.GetRunnerResponse:
        rows = await self.store.list_runners(request.runner_id)
        if not rows:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"runner {request.runner_id!r} not found")
        return pb.GetRunnerResponse(runner=runner_to_proto(rows[0]))

    async def Connect(self, request_iterator, context):
        """Register, then relay the session's outbox while a reader task handles the runner's reports."""
        try:
            first = await anext(aiter(request_iterator))
        except StopAsyncIteration:
            return
        if first.WhichOneof("message") != "register":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "first message must be register")
        session = await self._register(first.register, context)
        outbox = session.outbox
        reader = asyncio.create_task(self._read_reports(session, outbox, request_iterator))
        try:
            yield pb.ConnectResponse(registered=pb.Registered(runner_id=session.runner_id))
            self.dispatcher.wake()
            while True:
                message = await outbox.get()
                if message is None:
                    break
                yield message
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if session.outbox is outbox:  # not superseded by a reconnect: the runner is away
                session.detach()
                if not self.dispatcher.stopping:
                    # The store may already be closing when the server stops; the flag is cosmetic.
                    with contextlib.suppress(Exception):
                        await self.store.set_runner_online(session.runner_id, False)
            log.info("runner %s disconnected (its leases live until %.1f s after its last message)",
                     session.runner_id, session.ttl)

    async def _register(self, reg: pb.RegisterRunner, context) -> RunnerSession:
        """Attach a stream to the runner's session (a reconnect keeps its leases) and reconcile
        the jobs it says it runs."""
        if not reg.runner_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "register.runner_id is required")
        caps = reg.capabilities
        interval = reg.heartbeat_interval_secs or 2.0
        session = self.dispatcher.sessions.get(reg.runner_id)
        if session is None:
            session = RunnerSession(reg.runner_id, frozenset(), frozenset(), 1, interval)
            self.dispatcher.sessions[reg.runner_id] = session
        else:  # a reconnect: end the old stream, keep the leases
            session.detach()
            session.outbox = asyncio.Queue()
            session.generation += 1
        session.engines = frozenset(reg.engines)
        session.simulation_types = frozenset(caps.supported_simulation_types)
        session.capacity = max(1, caps.max_concurrent_jobs)
        session.heartbeat_interval = interval
        session.draining = False
        session.touch()
        self.dispatcher.reconcile_register(session, {r.job_id: r.attempt for r in reg.running_jobs})
        await self.store.upsert_runner(
            RunnerRow(
                reg.runner_id, reg.name or reg.runner_id, list(reg.engines),
                caps.SerializeToString(), True, time.time(), heartbeat_interval=interval,
            )
        )
        log.info("runner %s registered: engines=%s slots=%d running=%d", reg.runner_id, list(reg.engines),
                 session.capacity, len(reg.running_jobs))
        return session

    async def _read_reports(self, session: RunnerSession, outbox: asyncio.Queue, request_iterator) -> None:
        """Handle one stream's messages. Reports are settled concurrently (so reports of all
        runners share store transactions) and acked once committed; a heartbeat is reconciled
        only after every earlier report of the stream has been settled."""
        reports: set[asyncio.Task] = set()
        try:
            async for message in request_iterator:
                if session.outbox is not outbox:
                    break  # superseded by a newer stream of the same runner
                session.touch()
                kind = message.WhichOneof("message")
                if kind in ("job_finished", "job_released"):
                    task = asyncio.create_task(self._report(session, outbox, getattr(message, kind)))
                    reports.add(task)
                    task.add_done_callback(reports.discard)
                elif kind == "heartbeat":
                    if reports:
                        await asyncio.gather(*reports, return_exceptions=True)
                    await self.dispatcher.reconcile_heartbeat(session, _running(session, message.heartbeat))
                    await self.store.set_runner_online(session.runner_id, True, time.time())
                elif kind == "job_started":
                    lease = session.leases.get(message.job_started.job_id)
                    if lease is not None and lease.attempt == message.job_started.attempt:
                        lease.confirmed = True
                elif kind == "draining":
                    session.draining = True
                    log.info("runner %s is draining (grace %.1f s)", session.runner_id,
                             message.draining.grace_seconds)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            outbox.put_nowait(None)

    async def _report(self, session: RunnerSession, outbox: asyncio.Queue, report) -> None:
        """Settle a JobFinished or JobReleased and queue its ack."""
        try:
            if isinstance(report, pb.JobFinished):
                ack = await self._finished(session, report)
            else:
                ack = await self._released(session, report)
        except Exception:  # noqa: BLE001 - no ack: the runner resends after reconnecting
            log.exception("report of job %s attempt %d failed", report.job_id, report.attempt)
            return
        outbox.put_nowait(ack)

    async def _finished(self, session: RunnerSession, report: pb.JobFinished) -> pb.ConnectResponse:
        """Record a JobFinished exactly once; the ack says whether it was (or had been) accepted."""
        result = report.result
        result.job_id, result.attempt = report.job_id, report.attempt
        result.metadata["runner_id"] = session.runner_id
        if result.success:
            outcome = "completed"
        else:
            outcome = "cancelled" if result.termination_reason == "cancelled" else "failed"
        record = Report(
            outcome, result.exit_code, result.termination_reason,
            result.error_message if result.HasField("error_message") else None, result.SerializeToString(),
        )
        return await self._settle(session, report.job_id, report.attempt, "finished", record)

    async def _released(self, session: RunnerSession, report: pb.JobReleased) -> pb.ConnectResponse:
        """A draining runner hands a job back: requeued without charging its retry budget."""
        record = Report("released", reason="released", error_message=report.reason or None)
        return await self._settle(session, report.job_id, report.attempt, "released", record)

    async def _settle(self, session: RunnerSession, job_id: str, attempt: int, kind: str, record: Report):
        lease = session.leases.get(job_id)
        if lease is not None and lease.attempt != attempt:
            lease = None
        settled = await self.dispatcher.end_attempt(session.runner_id, job_id, lease, kind, record, attempt=attempt)
        if lease is not None and settled.verdict != "unknown":
            session.leases.pop(job_id, None)
        if settled.verdict not in ("accepted", "duplicate"):
            log.warning("ignored %s report of job %s attempt %d from %s (%s)",
                        kind, job_id, attempt, session.runner_id, settled.verdict)
        self.dispatcher.wake()
        accepted = settled.verdict in ("accepted", "duplicate")
        return pb.ConnectResponse(ack=pb.ReportAck(job_id=job_id, attempt=attempt, accepted=accepted))


def _running(session: RunnerSession, beat: pb.Heartbeat) -> dict[str, int]:
    """Heartbeat jobs with attempts; a bare running_job_ids entry is taken at its lease's attempt."""
    running = {r.job_id: r.attempt for r in beat.running_jobs}
    for job_id in beat.running_job_ids:
        if job_id not in running:
            lease = session.leases.get(job_id)
            running[job_id] = lease.attempt if lease else 0
    return running


async def run(host: str, port: int, data_dir: Path, sampler_addr: str) -> None:
    """Open the store, start the dispatcher and serve until signalled."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(data_dir / "scheduler.db")
    dropped = await store.delete_unready_batches()
    if dropped:
        log.warning("deleted %d batches whose submission did not finish", dropped)
    await store.mark_all_runners_offline()
    dispatcher = Dispatcher(store)
    adopted = await dispatcher.adopt_running()
    if adopted:
        log.warning("%d jobs were running when the scheduler stopped; waiting for their runners", adopted)
    dispatcher.start()
    channel = client_channel(sampler_addr)
    servicer = SchedulerServicer(store, dispatcher, sampler_grpc.SamplerServiceStub(channel))
    server = GrpcServer(
        lambda s: pb_grpc.add_SchedulerServiceServicer_to_server(servicer, s),
        [pb.DESCRIPTOR.services_by_name["SchedulerService"].full_name],
        host,
        port,
    )

    async def cleanup() -> None:
        await dispatcher.stop()
        await channel.close()
        await store.close()

    await serve_until_signalled(server, cleanup, grace=2.0)


def main(argv: list[str] | None = None) -> None:
    """Run the scheduler until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="lynx-scheduler", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--data-dir", type=Path, default=Path(".lynx"))
    parser.add_argument("--sampler-addr", default="127.0.0.1:50052")
    args = parser.parse_args(argv)
    configure_logging()
    asyncio.run(run(args.host, args.port, args.data_dir, args.sampler_addr))


if __name__ == "__main__":
    main()

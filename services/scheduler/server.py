"""SchedulerService over gRPC: user RPCs, the runner Connect stream, and process start-up."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path

import grpc
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_common.server import GrpcServer, client_channel, configure_logging, serve_until_signalled
from lynx_scheduler import core
from lynx_scheduler.convert import batch_to_proto, job_to_proto, result_of, runner_to_proto
from lynx_scheduler.dispatch import Dispatcher, RunnerSession
from lynx_scheduler.store import BatchRow, RunnerRow, Store
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

    async def GetBatch(self, request, context) -> pb.GetBatchResponse:
        batch = await self._batch_or_abort(request.batch_id, context)
        return pb.GetBatchResponse(batch=batch_to_proto(batch, with_config=True))

    async def ListBatches(self, request, context) -> pb.ListBatchesResponse:
        limit = request.limit if 0 < request.limit <= 1000 else 100
        rows = await self.store.list_batches(limit)
        return pb.ListBatchesResponse(batches=[batch_to_proto(b) for b in rows])

    async def CancelBatch(self, request, context) -> pb.CancelBatchResponse:
        before = await self._batch_or_abort(request.batch_id, context)
        if core.batch_status(before.counts, before.cancelled) in core.TERMINAL:
            # Finished batches keep their outcome; cancelling one changes nothing.
            return pb.CancelBatchResponse(batch=batch_to_proto(before), cancelled_jobs=0)
        running = await self.store.cancel_batch(
            request.batch_id, time.time(),
            lambda job_id: result_of(job_id, "cancelled", "batch cancelled before the job started"),
        )
        for job in running:
            session = self.dispatcher.sessions.get(job.runner_id or "")
            if session and job.job_id in session.leases:
                session.outbox.put_nowait(
                    pb.ConnectResponse(cancel=pb.CancelJob(job_id=job.job_id, reason="batch cancelled"))
                )
            else:  # nobody runs it: cancel it here
                await self.store.finish_attempt(
                    job.job_id, core.CANCELLED, result_of(job.job_id, "cancelled", "batch cancelled"),
                    False, time.time(),
                )
        after = await self.store.get_batch(request.batch_id)
        cancelled = before.counts[core.PENDING] + len(running)
        return pb.CancelBatchResponse(batch=batch_to_proto(after), cancelled_jobs=cancelled)

    async def GetBatchResults(self, request, context) -> pb.GetBatchResultsResponse:
        await self._batch_or_abort(request.batch_id, context)
        jobs = await self.store.batch_jobs(request.batch_id, tuple(core.TERMINAL))
        return pb.GetBatchResultsResponse(
            results=[pb.JobResult.FromString(j.result) for j in jobs if j.result]
        )

    async def ListJobs(self, request, context) -> pb.ListJobsResponse:
        await self._batch_or_abort(request.batch_id, context)
        return pb.ListJobsResponse(jobs=[job_to_proto(j) for j in await self.store.batch_jobs(request.batch_id)])

    async def GetJob(self, request, context) -> pb.GetJobResponse:
        job = await self.store.get_job(request.job_id)
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
        reader = asyncio.create_task(self._read_reports(session, request_iterator))
        try:
            yield pb.ConnectResponse(registered=pb.Registered(runner_id=session.runner_id))
            self.dispatcher.wake()
            while True:
                message = await session.outbox.get()
                if message is None:
                    break
                yield message
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await self.dispatcher.drop_session(session)
            log.info("runner %s disconnected", session.runner_id)

    async def _register(self, reg: pb.RegisterRunner, context) -> RunnerSession:
        if not reg.runner_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "register.runner_id is required")
        old = self.dispatcher.sessions.get(reg.runner_id)
        if old is not None:  # a reconnect replaces the stale stream
            await self.dispatcher.drop_session(old)
        caps = reg.capabilities
        session = RunnerSession(
            runner_id=reg.runner_id,
            engines=frozenset(reg.engines),
            simulation_types=frozenset(caps.supported_simulation_types),
            capacity=max(1, caps.max_concurrent_jobs),
            heartbeat_interval=reg.heartbeat_interval_secs or 2.0,
        )
        self.dispatcher.sessions[reg.runner_id] = session
        await self.store.upsert_runner(
            RunnerRow(
                reg.runner_id, reg.name or reg.runner_id, list(reg.engines),
                caps.SerializeToString(), True, time.time(),
            )
        )
        log.info("runner %s registered: engines=%s slots=%d", reg.runner_id, list(reg.engines), session.capacity)
        return session

    async def _read_reports(self, session: RunnerSession, request_iterator) -> None:
        try:
            async for message in request_iterator:
                session.last_seen = time.monotonic()
                kind = message.WhichOneof("message")
                if kind == "heartbeat":
                    await self.store.set_runner_online(session.runner_id, True, time.time())
                elif kind == "job_finished":
                    await self._finish(session, message.job_finished)
                elif kind == "job_started":
                    log.info("job %s started on %s", message.job_started.job_id, session.runner_id)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            session.outbox.put_nowait(None)

    async def _finish(self, session: RunnerSession, report: pb.JobFinished) -> None:
        attempt = session.leases.get(report.job_id)
        if attempt != report.attempt:
            log.warning("ignored report of job %s attempt %d from %s (not its lease)",
                        report.job_id, report.attempt, session.runner_id)
            return
        del session.leases[report.job_id]
        job = await self.store.get_job(report.job_id)
        batch = await self.store.get_batch(job.batch_id, with_counts=False)
        result = report.result
        result.job_id, result.attempt = job.job_id, report.attempt
        result.metadata["runner_id"] = session.runner_id
        if result.success:
            status, failed = core.COMPLETED, False
        elif batch.cancelled:
            status, failed = core.CANCELLED, False
        else:
            failed = True
            status = core.next_status_after_failure(result.termination_reason, job.failures + 1, batch.max_retries)
        await self.store.finish_attempt(job.job_id, status, result.SerializeToString(), failed, time.time())
        log.info("job %s attempt %d -> %s", job.job_id, report.attempt, status)
        self.dispatcher.wake()


async def run(host: str, port: int, data_dir: Path, sampler_addr: str) -> None:
    """Open the store, start the dispatcher and serve until signalled."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(data_dir / "scheduler.db")
    requeued = await store.requeue_all_running()
    if requeued:
        log.warning("requeued %d jobs that were running when the scheduler stopped", requeued)
    await store.mark_all_runners_offline()
    dispatcher = Dispatcher(store)
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

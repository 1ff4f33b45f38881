"""SchedulerService over gRPC: user RPCs, the runner Connect stream, and process start-up."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from pathlib import Path

import aiosqlite
import grpc

from lynx.artifacts.v1 import artifact_service_pb2 as apb
from lynx.artifacts.v1 import artifact_service_pb2_grpc as apb_grpc
from lynx.auth.v1 import auth_service_pb2 as auth_pb
from lynx.auth.v1 import auth_service_pb2_grpc as auth_grpc
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_common import limits, security
from lynx_common.errors import ValidationError
from lynx_common.objectstore import open_store
from lynx_common.server import CLIENT_OPTIONS, GrpcServer, configure_logging, serve_until_signalled
from lynx_common.status import abort_invalid, abort_validation
from lynx_scheduler import policy
from lynx_scheduler.artifacts import ArtifactServicer
from lynx_scheduler.convert import batch_to_proto, job_result, job_to_proto, runner_to_proto, scheduler_result
from lynx_scheduler.dispatch import Dispatcher
from lynx_scheduler.rows import BatchRow
from lynx_scheduler.runs import page_size, stream_runs
from lynx_scheduler.store import Store
from lynx_scheduler.submission import Submissions
from lynx_scheduler.tokens import AuthServicer, Tokens

log = logging.getLogger(__name__)
SAMPLER_READY_S = 5.0  # how long a submission waits for a starting or restarting sampler


class SchedulerServicer(pb_grpc.SchedulerServiceServicer):
    """Translates RPCs to store and dispatcher calls and sets status codes."""

    def __init__(self, store: Store, dispatcher: Dispatcher, sampler: sampler_grpc.SamplerServiceStub,
                 sampler_channel: grpc.aio.Channel | None = None):
        self.sampler_channel = sampler_channel
        self.store = store
        self.dispatcher = dispatcher
        self.sampler = sampler
        self.sessions = dispatcher.sessions
        self.submissions = Submissions(store, dispatcher, sampler)

    # Submission, preview and extension live in lynx_scheduler.submission.
    async def SubmitBatch(self, request: pb.SubmitBatchRequest, context) -> pb.SubmitBatchResponse:
        await self._sampler_ready(context)
        return await self.submissions.submit(request, context)

    async def Preview(self, request: pb.PreviewRequest, context):
        await self._sampler_ready(context)
        async for chunk in self.submissions.preview(request, context):
            yield chunk

    async def ExtendBatch(self, request: pb.ExtendBatchRequest, context) -> pb.ExtendBatchResponse:
        await self._sampler_ready(context)
        return await self.submissions.extend(request, context)

    async def _sampler_ready(self, context) -> None:
        """Wait (up to SAMPLER_READY_S) for a starting or restarting sampler; UNAVAILABLE after that."""
        if self.sampler_channel is None:
            return
        try:
            await asyncio.wait_for(self.sampler_channel.channel_ready(), SAMPLER_READY_S)
        except TimeoutError:
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"the sampler did not answer within {SAMPLER_READY_S:g} s; try again later")

    async def _batch_or_abort(self, batch_id: str, context) -> BatchRow:
        batch = await self.store.get_batch(batch_id)
        if batch is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"batch {batch_id!r} not found")
        return batch

    def _batch(self, batch: BatchRow, with_config: bool = False) -> pb.Batch:
        """The Batch proto, with a routing message when no connected runner can serve it."""
        return batch_to_proto(batch, with_config, self.sessions.routing_message(batch))

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
        if policy.batch_status(before.counts, before.cancelled, before.aborted) in policy.TERMINAL:
            # Finished batches keep their outcome; cancelling one changes nothing.
            return pb.CancelBatchResponse(batch=self._batch(before), cancelled_jobs=0)
        final = scheduler_result("cancelled", "batch cancelled before the job started")
        pending, running = await self.store.cancel_batch(request.batch_id, time.time(), final)
        await self.sessions.kill_running(request.batch_id, "batch cancelled")
        after = await self.store.get_batch(request.batch_id)
        return pb.CancelBatchResponse(batch=self._batch(after), cancelled_jobs=pending + len(running))

    async def RerunFailed(self, request, context) -> pb.RerunFailedResponse:
        """Queue a finished batch's failed jobs again: same parameters and seeds, attempt numbers
        continue, retry budget reset."""
        if not request.batch_id:
            await abort_invalid(context, "batch_id", "is required")
        batch = await self._batch_or_abort(request.batch_id, context)
        status = policy.batch_status(batch.counts, batch.cancelled, batch.aborted)
        if status not in policy.TERMINAL:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"batch {request.batch_id} is {status}; only a finished batch can rerun its failed jobs",
            )
        if batch.cancelled:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"batch {request.batch_id} was cancelled; submit it again instead")
        requeued = await self.store.rerun_failed(request.batch_id)
        log.info("batch %s: %d failed jobs queued again", request.batch_id, requeued)
        self.dispatcher.wake()
        after = await self.store.get_batch(request.batch_id)
        return pb.RerunFailedResponse(batch=self._batch(after), requeued_jobs=requeued)

    async def GetBatchResults(self, request, context) -> pb.GetBatchResultsResponse:
        await self._batch_or_abort(request.batch_id, context)
        jobs = await self.store.batch_jobs(request.batch_id, tuple(policy.TERMINAL))
        return pb.GetBatchResultsResponse(results=[r for r in map(job_result, jobs) if r is not None])

    async def StreamRuns(self, request: pb.StreamRunsRequest, context):
        """The batch's runs table in run order, in pages (see lynx_scheduler.runs)."""
        if not request.batch_id:
            await abort_invalid(context, "batch_id", "is required")
        if request.page_size < 0:
            await abort_invalid(context, "page_size", "must be >= 0")
        await self._batch_or_abort(request.batch_id, context)
        async for page in stream_runs(
            self.store, request.batch_id, page_size(request.page_size), request.columnar
        ):
            yield page

    async def ListJobs(self, request, context) -> pb.ListJobsResponse:
        await self._batch_or_abort(request.batch_id, context)
        if request.page_size < 0:
            await abort_invalid(context, "page_size", f"must not be negative, got {request.page_size}")
        try:
            after = int(request.page_token) if request.page_token else -1
        except ValueError:
            after = None
        if after is None or after < -1:
            await abort_invalid(context, "page_token", "is not a token this listing gave")
        size = request.page_size or -1
        jobs = await self.store.batch_jobs(request.batch_id, with_history=True, after_run_id=after, limit=size)
        samples = self.dispatcher.samples
        more = size > 0 and len(jobs) == size
        return pb.ListJobsResponse(jobs=[job_to_proto(j, await samples.of(j)) for j in jobs],
                                   next_page_token=str(jobs[-1].run_id) if more else "")

    async def GetJob(self, request, context) -> pb.GetJobResponse:
        job = await self.store.get_job(request.job_id, with_history=True)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job {request.job_id!r} not found")
        return pb.GetJobResponse(job=job_to_proto(job, await self.dispatcher.samples.of(job)))

    def _runner(self, row) -> pb.Runner:
        """A stored runner with what its live session knows: draining, and the jobs it holds."""
        runner = runner_to_proto(row)
        session = self.dispatcher.sessions.by_id.get(row.runner_id)
        if session is not None:
            runner.draining = session.draining
            runner.job_ids.extend(sorted(session.leases))
        return runner

    async def ListRunners(self, request, context) -> pb.ListRunnersResponse:
        return pb.ListRunnersResponse(runners=[self._runner(r) for r in await self.store.list_runners()])

    async def GetRunner(self, request, context) -> pb.GetRunnerResponse:
        rows = await self.store.list_runners(request.runner_id)
        if not rows:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"runner {request.runner_id!r} not found")
        return pb.GetRunnerResponse(runner=self._runner(rows[0]))

    async def Connect(self, request_iterator, context):
        """Attach the runner's session, then relay its outbox while the session reads the runner's reports."""
        try:
            first = await anext(aiter(request_iterator))
        except StopAsyncIteration:
            return
        if first.WhichOneof("message") != "register":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "first message must be register")
        try:
            limits.check_length("name_chars", "register.runner_id", first.register.runner_id)
            limits.check_length("name_chars", "register.name", first.register.name)
            session = await self.sessions.attach(first.register, security.current_principal.get())
        except ValidationError as exc:
            await abort_validation(context, exc)
        except PermissionError as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        except FileExistsError as exc:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        outbox = session.outbox
        reader = asyncio.create_task(self.sessions.receive(session, outbox, request_iterator))
        try:
            yield pb.ConnectResponse(registered=pb.Registered(runner_id=session.runner_id))
            while (message := await outbox.get()) is not None:
                yield message
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await self.sessions.detached(session, outbox)


async def run(host: str, port: int, data_dir: Path, sampler_addr: str, artifact_store: str = "",
              secure: security.ServerSecurity | None = None, admin_token_file: Path | None = None) -> None:
    """Open the store, start the dispatcher and serve until signalled (SchedulerService and, on the
    same port, ArtifactService over `artifact_store`, default <data_dir>/artifacts)."""
    secure = secure or security.ServerSecurity()
    security.check_exposure("lynx-scheduler", host, secure)
    data_dir.mkdir(parents=True, exist_ok=True)
    objects = open_store(artifact_store or str(data_dir / "artifacts"))
    log.info("artifact store: %s", objects.url)
    store = await Store.open(data_dir / "scheduler.db")
    tokens = Tokens(await aiosqlite.connect(str(data_dir / "scheduler.db")))
    sampler_token = security.env_token()
    if secure.auth and admin_token_file is not None:
        await tokens.ensure_admin_file(admin_token_file)
        sampler_token = sampler_token or admin_token_file.read_text().strip()
    dropped = await store.delete_unready_batches()
    if dropped:
        log.warning("deleted %d batches whose submission did not finish", dropped)
    await store.mark_all_runners_offline()
    dispatcher = Dispatcher(store)
    adopted = await dispatcher.sessions.adopt_running()
    if adopted:
        log.warning("%d jobs were running when the scheduler stopped; waiting for their runners", adopted)
    dispatcher.start()
    channel = security.client_channel(sampler_addr, CLIENT_OPTIONS, token=sampler_token)
    servicer = SchedulerServicer(store, dispatcher, sampler_grpc.SamplerServiceStub(channel), channel)
    artifacts = ArtifactServicer(store, objects)

    def holds(runner_id: str, job_id: str) -> bool:  # whether that runner holds the job's lease now
        session = dispatcher.sessions.by_id.get(runner_id)
        return session is not None and job_id in session.leases

    def revoked(token_id: str) -> None:  # a runner whose token is revoked loses its stream (and cannot reconnect)
        for session in dispatcher.sessions.by_id.values():
            if session.token_id == token_id and session.connected:
                log.warning("runner %s: its token was revoked; closing its stream", session.runner_id)
                session.detach()

    auth = AuthServicer(tokens, holds, revoked)

    def register(s: grpc.aio.Server) -> None:
        pb_grpc.add_SchedulerServiceServicer_to_server(servicer, s)
        apb_grpc.add_ArtifactServiceServicer_to_server(artifacts, s)
        if secure.auth:
            auth_grpc.add_AuthServiceServicer_to_server(auth, s)

    names = [pb.DESCRIPTOR.services_by_name["SchedulerService"].full_name,
             apb.DESCRIPTOR.services_by_name["ArtifactService"].full_name]
    if secure.auth:
        names.append(auth_pb.DESCRIPTOR.services_by_name["AuthService"].full_name)
    server = GrpcServer(register, names, host, port, secure, tokens.verify if secure.auth else None,
                        ready=channel.channel_ready)  # SERVING once the sampler answers

    async def cleanup() -> None:
        await dispatcher.stop()
        await channel.close()
        await tokens.db.close()
        await store.close()

    await serve_until_signalled(server, cleanup, grace=2.0)


def main(argv: list[str] | None = None) -> None:
    """Run the scheduler until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="lynx-scheduler", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--data-dir", type=Path, default=Path(".lynx"))
    parser.add_argument("--sampler-addr", default="127.0.0.1:50052")
    parser.add_argument(
        "--artifact-store", default=os.environ.get("LYNX_ARTIFACT_STORE", ""), metavar="URL",
        help="where uploaded output files go: a directory, file:///dir or s3://bucket/prefix"
        " (env LYNX_ARTIFACT_STORE; default <data-dir>/artifacts)",
    )
    parser.add_argument("--admin-token-file", type=Path,
                        help="with --auth: this file's token is an admin token (a new one is written if it is missing)")
    security.add_server_args(parser)
    args = parser.parse_args(argv)
    configure_logging()
    asyncio.run(run(args.host, args.port, args.data_dir, args.sampler_addr, args.artifact_store,
                    security.server_security(args), args.admin_token_file))


if __name__ == "__main__":
    main()

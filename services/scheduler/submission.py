"""Submitting, previewing and extending batches: validate, stream the sample in, queue the jobs."""

from __future__ import annotations

import logging
import secrets
import time
import uuid

import grpc
from lynx.sampler.v1 import sampler_service_pb2 as sampler_pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.errors import ValidationError
from lynx_scheduler import core
from lynx_scheduler.dispatch import Dispatcher
from lynx_scheduler.store import BatchRow, Store

log = logging.getLogger(__name__)
SAMPLER_DEADLINE_S = 120.0


class Submissions:
    """The SubmitBatch, Preview and ExtendBatch RPCs."""

    def __init__(self, store: Store, dispatcher: Dispatcher, sampler: sampler_grpc.SamplerServiceStub):
        self.store = store
        self.dispatcher = dispatcher
        self.sampler = sampler

    async def submit(self, request: pb.SubmitBatchRequest, context) -> pb.SubmitBatchResponse:
        config = request.config
        try:
            plan = core.validate_config(config, request.runs_override)
        except ValidationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        seed = config.monte_carlo.seed if config.monte_carlo.HasField("seed") else secrets.randbits(52)
        if not config.monte_carlo.HasField("seed"):
            config.monte_carlo.seed = seed  # recorded so the batch can be reproduced
        sample = sampler_pb.SampleRequest(
            dispersions=config.dispersions,
            sampling_method=config.monte_carlo.sampling_method,
            runs=plan.runs,
            seed=seed,
        )
        names = [d.name for d in config.dispersions]  # keep the declared order
        jobs = []
        try:
            async for chunk in self.sampler.Sample(sample, timeout=SAMPLER_DEADLINE_S):
                for ps in chunk.parameter_sets:
                    parameters = {name: ps.parameters[name] for name in names}
                    jobs.append((str(uuid.uuid4()), ps.run_id, parameters))
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code != grpc.StatusCode.INVALID_ARGUMENT:
                code = grpc.StatusCode.UNAVAILABLE
            await context.abort(code, f"sampler: {exc.details()}")
        batch = BatchRow(
            batch_id=str(uuid.uuid4()),
            name=request.name or config.simulation.name or "batch",
            config=config.SerializeToString(),
            seed=seed,
            total_jobs=len(jobs),
            engine=plan.engine,
            sim_type=plan.simulation_type,
            max_parallel=plan.max_parallel_jobs,
            max_retries=plan.max_retries,
            cancelled=False,
            created_at=time.time(),
            started_at=None,
            finished_at=None,
        )
        await self.store.insert_batch(batch, jobs)
        log.info("batch %s queued with %d jobs (seed %d)", batch.batch_id, len(jobs), seed)
        self.dispatcher.wake()
        return pb.SubmitBatchResponse(batch_id=batch.batch_id, total_jobs=len(jobs))

    async def preview(self, request: pb.PreviewRequest, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Preview is not implemented yet")
        yield pb.PreviewResponse()

    async def extend(self, request: pb.ExtendBatchRequest, context) -> pb.ExtendBatchResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "ExtendBatch is not implemented yet")

"""Submitting, previewing and extending batches: validate, stream the sample in, queue the jobs.

The sample arrives from the sampler in typed column chunks (RunColumns) and goes to SQLite chunk
by chunk, so the scheduler's memory does not grow with the batch. While its jobs are being
inserted a batch has `ready = 0`: the dispatcher and the listings ignore it, and a submission
that dies half way is deleted (here on error, at start-up after a crash).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.common.v1 import parameters_pb2 as ppb
from lynx.sampler.v1 import sampler_service_pb2 as sampler_pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common import limits
from lynx_common.errors import ValidationError
from lynx_common.run_config import new_seed, run_config
from lynx_common.status import abort_invalid, abort_validation, validation_error
from lynx_scheduler import columns, validation
from lynx_scheduler.convert import batch_to_proto
from lynx_scheduler.dispatch import Dispatcher
from lynx_scheduler.rows import BatchRow
from lynx_scheduler.store import Store

log = logging.getLogger(__name__)
SAMPLER_DEADLINE_S = 600.0  # the whole Sample stream, however big the batch
MAX_EXTEND_RUNS = 1_000_000


class SamplingError(Exception):
    """The sampler refused the spec (INVALID_ARGUMENT, with its field violation when it sent
    one) or could not be reached or broke off (UNAVAILABLE)."""

    def __init__(self, code: grpc.StatusCode, message: str, violation: ValidationError | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.violation = violation


@dataclass
class Sample:
    """A sample being streamed: its size and caveats, then its checked chunks of runs."""

    total_runs: int
    warnings: list[str]
    chunks: AsyncIterator[ppb.RunColumns]


def _chosen_seed(config: cfg.BatchConfig) -> int:
    """The config's seed, or a fresh one recorded in the config so the batch can be reproduced."""
    if not config.monte_carlo.HasField("seed"):
        config.monte_carlo.seed = new_seed()
    return config.monte_carlo.seed


async def _start_sample(
    sampler: sampler_grpc.SamplerServiceStub, config: cfg.BatchConfig, runs: int, seed: int, existing_runs: int = 0
) -> Sample:
    """Start the sampler's stream and read its first chunk (where validation errors surface)."""
    mc = config.monte_carlo
    request = sampler_pb.SampleRequest(
        dispersions=config.dispersions,
        sampling_method=mc.sampling_method,
        runs=runs,
        seed=seed,
        optimization=mc.optimization,
        correlation=mc.correlation,
        existing_runs=existing_runs,
    )
    # wait_for_ready: a starting or restarting sampler is waited for (within the deadline), not failed at once.
    call = sampler.Sample(request, timeout=SAMPLER_DEADLINE_S, wait_for_ready=True)
    names = [d.name for d in config.dispersions]  # the declared order
    try:
        first = await call.read()
    except grpc.aio.AioRpcError as exc:
        raise _sampling_error(exc) from None
    if first is grpc.aio.EOF:
        raise SamplingError(grpc.StatusCode.UNAVAILABLE, "sampler: empty answer")

    def checked(chunk: sampler_pb.SampleResponse) -> ppb.RunColumns:
        try:
            columns.check(chunk.runs, names)
        except columns.MalformedSample as exc:
            raise SamplingError(grpc.StatusCode.UNAVAILABLE, str(exc)) from None
        return chunk.runs

    async def chunks() -> AsyncIterator[ppb.RunColumns]:
        try:
            if first.runs.run_ids:
                yield checked(first)
            while True:
                chunk = await call.read()
                if chunk is grpc.aio.EOF:
                    return
                if chunk.runs.run_ids:
                    yield checked(chunk)
        except grpc.aio.AioRpcError as exc:
            raise _sampling_error(exc) from None
        finally:
            call.cancel()

    return Sample(first.total_runs, list(first.warnings), chunks())


@dataclass
class Preview:
    """What a config would queue: its seed, size, caveats and run configs (in chunks)."""

    seed: int
    total_runs: int
    warnings: list[str]
    run_configs: AsyncIterator[list[dict]]


async def start_preview(
    sampler: sampler_grpc.SamplerServiceStub, config: cfg.BatchConfig, runs_override: int = 0, limit: int = 0
) -> Preview:
    """Validate a config and start sampling it; the run configs are those a batch would get
    (without batch and job ids). Raises ValidationError or SamplingError before any run config."""
    if limit < 0:
        raise ValidationError("limit", f"must not be negative, got {limit}")
    plan = validation.validate_config(config, runs_override)
    seed = _chosen_seed(config)
    sample = await _start_sample(sampler, config, plan.runs, seed)
    sim = config.simulation
    fields = dict(simulation_name=sim.name, simulation_version=sim.version, duration_minutes=sim.duration_minutes,
                  sampling_method=config.monte_carlo.sampling_method, generated_at=time.time())

    async def run_configs() -> AsyncIterator[list[dict]]:
        sent = 0
        async for chunk in sample.chunks:
            n = len(chunk.run_ids) if not limit else min(len(chunk.run_ids), limit - sent)
            values = columns.python_columns(chunk)
            yield [
                run_config(chunk.run_ids[i], columns.at(values, i), ids={"batch_seed": seed, "seed": chunk.seeds[i]},
                           **fields)
                for i in range(n)
            ]
            sent += n
            if limit and sent >= limit:
                return

    return Preview(seed, sample.total_runs, sample.warnings, run_configs())


class Submissions:
    """The SubmitBatch, Preview and ExtendBatch RPCs."""

    def __init__(self, store: Store, dispatcher: Dispatcher, sampler: sampler_grpc.SamplerServiceStub):
        self.store = store
        self.dispatcher = dispatcher
        self.sampler = sampler

    # -- SubmitBatch ------------------------------------------------------------------------

    async def submit(self, request: pb.SubmitBatchRequest, context) -> pb.SubmitBatchResponse:
        config = request.config
        try:
            limits.check_length("name_chars", "name", request.name)
            plan = validation.validate_config(config, request.runs_override)
            seed = _chosen_seed(config)
            sample = await _start_sample(self.sampler, config, plan.runs, seed)
        except ValidationError as exc:
            await abort_validation(context, exc)
        except SamplingError as exc:
            await _abort(context, exc)
        # The stored config says how many runs the batch was sampled with (runs_override, grid).
        config.monte_carlo.runs = sample.total_runs or plan.runs
        batch = BatchRow(
            batch_id=str(uuid.uuid4()),
            name=request.name or config.simulation.name or "batch",
            config=config.SerializeToString(),
            seed=seed,
            total_jobs=sample.total_runs,
            engine=plan.engine,
            sim_type=plan.simulation_type,
            max_parallel=plan.max_parallel_jobs,
            max_retries=plan.max_retries,
            cancelled=False,
            created_at=time.time(),
            started_at=None,
            finished_at=None,
            warnings=sample.warnings,
        )
        try:
            inserted = await self._insert(batch, sample)
        except SamplingError as exc:
            await self.store.discard_unready_batch(batch.batch_id)
            await _abort(context, exc)
        except BaseException:
            await self.store.discard_unready_batch(batch.batch_id)
            raise
        log.info("batch %s queued with %d jobs (seed %d)", batch.batch_id, inserted, seed)
        self.dispatcher.wake()
        return pb.SubmitBatchResponse(
            batch_id=batch.batch_id, total_jobs=inserted, seed=seed, warnings=sample.warnings
        )

    async def _insert(self, batch: BatchRow, sample: Sample) -> int:
        """Insert the batch hidden, its jobs chunk by chunk, then reveal it; returns the job count."""
        await self.store.insert_hidden_batch(batch)
        inserted = 0
        writing: asyncio.Task | None = None  # the previous chunk's insert, overlapping the next read
        try:
            async for chunk in sample.chunks:  # one short transaction per chunk: dispatch is never held up
                count = len(chunk.run_ids)
                write = self.store.add_sample(batch.batch_id, chunk.run_ids[0], chunk.SerializeToString(), count)
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(write)
                inserted += count
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)
        if sample.total_runs and inserted != sample.total_runs:
            raise SamplingError(
                grpc.StatusCode.UNAVAILABLE,
                f"sampler: announced {sample.total_runs} runs but sent {inserted}",
            )
        await self.store.reveal_batch(batch.batch_id, inserted)
        return inserted

    # -- Preview ----------------------------------------------------------------------------

    async def preview(self, request: pb.PreviewRequest, context):
        try:
            preview = await start_preview(self.sampler, request.config, request.runs_override, request.limit)
        except ValidationError as exc:
            await abort_validation(context, exc)
        except SamplingError as exc:
            await _abort(context, exc)
        yield pb.PreviewResponse(seed=preview.seed, total_runs=preview.total_runs, warnings=preview.warnings)
        try:
            async for docs in preview.run_configs:
                yield pb.PreviewResponse(run_config_json=[json.dumps(d) for d in docs])
        except SamplingError as exc:
            await _abort(context, exc)

    # -- ExtendBatch ------------------------------------------------------------------------

    async def extend(self, request: pb.ExtendBatchRequest, context) -> pb.ExtendBatchResponse:
        batch = await self.store.get_batch(request.batch_id)
        if batch is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"batch {request.batch_id!r} not found")
        if not 1 <= request.runs <= MAX_EXTEND_RUNS:
            await abort_invalid(context, "runs", f"must be between 1 and {MAX_EXTEND_RUNS}, got {request.runs}")
        if batch.cancelled or batch.aborted:
            why = "cancelled" if batch.cancelled else f"aborted ({batch.status_message})"
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"batch {batch.batch_id} is {why}: submit a new batch instead")
        config = cfg.BatchConfig.FromString(batch.config)
        existing = await self.store.next_run_id(batch.batch_id)
        method = config.monte_carlo.sampling_method or "latin_hypercube"
        if method == "latin_hypercube" and existing != config.monte_carlo.runs:
            # The sampler refines the original n-point design; a refined design cannot be refined again.
            await abort_invalid(
                context, "runs",
                f"cannot be added: this latin_hypercube batch was already extended from "
                f"{config.monte_carlo.runs} to {existing} runs, and only its original design can be refined "
                "with the one-point-per-stratum guarantee",
            )
        try:
            sample = await _start_sample(self.sampler, config, request.runs, batch.seed, existing_runs=existing)
            chunks = [(c.run_ids[0], c.SerializeToString(), len(c.run_ids)) async for c in sample.chunks]
        except SamplingError as exc:
            await _abort(context, exc)
        added = await self.store.extend_batch(batch.batch_id, chunks)
        log.info("batch %s extended by %d jobs (runs %d..%d)", batch.batch_id, added, existing, existing + added - 1)
        self.dispatcher.wake()
        after = await self.store.get_batch(batch.batch_id)
        return pb.ExtendBatchResponse(batch=batch_to_proto(after), added_jobs=added, warnings=sample.warnings)


def _sampling_error(exc: grpc.aio.AioRpcError) -> SamplingError:
    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return SamplingError(grpc.StatusCode.INVALID_ARGUMENT, exc.details(), validation_error(exc))
    return SamplingError(grpc.StatusCode.UNAVAILABLE, f"sampler: {exc.details()}")


async def _abort(context, exc: SamplingError) -> None:
    """Abort with the sampler's field violation when it named one, else with its code and text."""
    if exc.violation is not None:
        await abort_validation(context, exc.violation)
    await context.abort(exc.code, str(exc))

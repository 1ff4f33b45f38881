"""Submitting, previewing and extending batches: validate, stream the sample in, queue the jobs.

The sample arrives from the sampler in chunks and goes to SQLite chunk by chunk, so the
scheduler's memory does not grow with the batch. While its jobs are being inserted a batch
has `ready = 0`: the dispatcher and the listings ignore it, and a submission that dies half
way is deleted (here on error, at start-up after a crash).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.sampler.v1 import sampler_service_pb2 as sampler_pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.errors import ValidationError
from lynx_sampler.seeds import run_seed
from lynx_scheduler import core
from lynx_scheduler.convert import batch_to_proto
from lynx_scheduler.dispatch import Dispatcher
from lynx_scheduler.store import BatchRow, Store

log = logging.getLogger(__name__)
SAMPLER_DEADLINE_S = 600.0
MAX_EXTEND_RUNS = 1_000_000


class SamplingError(Exception):
    """The sampler refused the spec (INVALID_ARGUMENT) or could not be reached (UNAVAILABLE)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Sample:
    """A sample being streamed: its size and caveats, then its chunks of (run_id, parameters, seed)."""

    total_runs: int
    warnings: list[str]
    chunks: AsyncIterator[list[tuple[int, dict, int]]]


def value_casts(config: cfg.BatchConfig) -> dict[str, Callable[[object], object]]:
    """Per-parameter conversion of sampled values: whole-number parameters become ints in the
    run config (Struct carries every number as a double)."""
    casts: dict[str, Callable[[object], object]] = {}
    for d in config.dispersions:
        dist = d.distribution
        whole = dist.type == "integer_uniform" or (
            dist.type == "choice"
            and dist.values
            and all(v.WhichOneof("kind") == "number_value" and float(v.number_value).is_integer()
                    for v in dist.values)
        )
        if whole:
            casts[d.name] = _as_int
    return casts


def _as_int(value: object) -> object:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _chosen_seed(config: cfg.BatchConfig) -> int:
    """The config's seed, or a fresh one recorded in the config so the batch can be reproduced."""
    if not config.monte_carlo.HasField("seed"):
        config.monte_carlo.seed = secrets.randbits(52)
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
    call = sampler.Sample(request, timeout=SAMPLER_DEADLINE_S)
    names = [d.name for d in config.dispersions]  # keep the declared order
    casts = value_casts(config)
    try:
        first = await call.read()
    except grpc.aio.AioRpcError as exc:
        raise _sampling_error(exc) from None
    if first is grpc.aio.EOF:
        raise SamplingError(grpc.StatusCode.UNAVAILABLE, "sampler: empty answer")

    def rows(chunk: sampler_pb.SampleResponse) -> list[tuple[int, dict, int]]:
        out = []
        for ps in chunk.parameter_sets:
            # Struct's mapping interface is slow; read the Value messages directly.
            got = {
                k: v.number_value if v.WhichOneof("kind") == "number_value" else v.string_value
                for k, v in ps.parameters.fields.items()
            }
            try:
                params = {name: got[name] for name in names}  # the declared order
            except KeyError as exc:
                raise SamplingError(grpc.StatusCode.UNAVAILABLE,
                                    f"sampler: run {ps.run_id} lacks parameter {exc.args[0]!r}") from None
            for name, cast in casts.items():
                params[name] = cast(params[name])
            out.append((ps.run_id, params, ps.seed))
        return out

    async def chunks() -> AsyncIterator[list[tuple[int, dict, int]]]:
        try:
            if first.parameter_sets:
                yield rows(first)
            while True:
                chunk = await call.read()
                if chunk is grpc.aio.EOF:
                    return
                yield rows(chunk)
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
    plan = core.validate_config(config, runs_override)
    seed = _chosen_seed(config)
    sample = await _start_sample(sampler, config, plan.runs, seed)
    now = time.time()

    async def run_configs() -> AsyncIterator[list[dict]]:
        sent = 0
        async for chunk in sample.chunks:
            if limit:
                chunk = chunk[: limit - sent]
            sent += len(chunk)
            yield [
                core.run_config(run_id, params, config, now, {"batch_seed": seed, "seed": run_seed(seed, run_id)})
                for run_id, params, _ in chunk
            ]
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
            plan = core.validate_config(config, request.runs_override)
            seed = _chosen_seed(config)
            sample = await _start_sample(self.sampler, config, plan.runs, seed)
        except ValidationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except SamplingError as exc:
            await context.abort(exc.code, str(exc))
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
            await context.abort(exc.code, str(exc))
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
        async for chunk in sample.chunks:  # one short transaction per chunk: dispatch is never held up
            await self.store.add_jobs(batch.batch_id, _runs(chunk))
            inserted += len(chunk)
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
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except SamplingError as exc:
            await context.abort(exc.code, str(exc))
        yield pb.PreviewResponse(seed=preview.seed, total_runs=preview.total_runs, warnings=preview.warnings)
        try:
            async for docs in preview.run_configs:
                yield pb.PreviewResponse(run_config_json=[json.dumps(d) for d in docs])
        except SamplingError as exc:
            await context.abort(exc.code, str(exc))

    # -- ExtendBatch ------------------------------------------------------------------------

    async def extend(self, request: pb.ExtendBatchRequest, context) -> pb.ExtendBatchResponse:
        batch = await self.store.get_batch(request.batch_id)
        if batch is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"batch {request.batch_id!r} not found")
        if not 1 <= request.runs <= MAX_EXTEND_RUNS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"runs must be between 1 and {MAX_EXTEND_RUNS}, got {request.runs}"
            )
        if batch.cancelled or batch.aborted:
            why = "cancelled" if batch.cancelled else f"aborted ({batch.status_message})"
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"batch {batch.batch_id} is {why}: submit a new batch instead")
        config = cfg.BatchConfig.FromString(batch.config)
        existing = await self.store.next_run_id(batch.batch_id)
        method = config.monte_carlo.sampling_method or "latin_hypercube"
        if method == "latin_hypercube" and existing != config.monte_carlo.runs:
            # The sampler refines the original n-point design; a refined design cannot be refined again.
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"runs cannot be added: this latin_hypercube batch was already extended from "
                f"{config.monte_carlo.runs} to {existing} runs, and only its original design can be refined "
                "with the one-point-per-stratum guarantee",
            )
        try:
            sample = await _start_sample(self.sampler, config, request.runs, batch.seed, existing_runs=existing)
            rows = [row async for chunk in sample.chunks for row in chunk]
        except SamplingError as exc:
            await context.abort(exc.code, str(exc))
        await self.store.extend_batch(batch.batch_id, _runs(rows))
        log.info("batch %s extended by %d jobs (runs %d..%d)", batch.batch_id, len(rows), existing,
                 existing + len(rows) - 1)
        self.dispatcher.wake()
        after = await self.store.get_batch(batch.batch_id)
        return pb.ExtendBatchResponse(batch=batch_to_proto(after), added_jobs=len(rows), warnings=sample.warnings)


def _runs(chunk: list[tuple[int, dict, int]]) -> list[tuple[int, dict]]:
    return [(run_id, params) for run_id, params, _seed in chunk]


def _sampling_error(exc: grpc.aio.AioRpcError) -> SamplingError:
    code = exc.code()
    if code != grpc.StatusCode.INVALID_ARGUMENT:
        code = grpc.StatusCode.UNAVAILABLE
    return SamplingError(code, f"sampler: {exc.details()}" if code != grpc.StatusCode.INVALID_ARGUMENT
                         else exc.details())


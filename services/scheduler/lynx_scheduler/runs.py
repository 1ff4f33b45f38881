"""A batch's runs table (StreamRuns): one Run per job, inputs from the sample chunks, outputs and
final status from the stored result, read page by page.

A page is assembled as protobuf wire bytes: the inputs of a sample chunk are encoded once, column
by column, into each run's `Run.parameters` bytes (a message's serialized fields can be
concatenated); each job's own fields go through a Run message and are serialized beside them.
Building a Parameter message per input per run capped the table at a few thousand rows a second;
tests/results/test_stream_runs.py checks the bytes against messages built field by field. Columnar pages
(StreamRunsRequest.columnar) are built by lynx_scheduler.runs_page."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.columns import parameter_value, value_of
from lynx_common.names import JOB_STATUS
from lynx_scheduler import policy
from lynx_scheduler.columns import MalformedSample, python_columns
from lynx_scheduler.rows import JobRow
from lynx_scheduler.runs_page import ChunkCache, columnar_page, length_delimited, varint
from lynx_scheduler.store import Store

DEFAULT_PAGE = 1000
MAX_PAGE = 10_000
_PARAMETERS = 4  # Run.parameters
_RUNS = 1  # StreamRunsResponse.runs
_STATUS = {name: JOB_STATUS.value(name) for name in policy.JOB_STATUSES}


def page_size(requested: int) -> int:
    """The page size StreamRuns uses: 0 means DEFAULT_PAGE; capped at MAX_PAGE."""
    return DEFAULT_PAGE if requested <= 0 else min(requested, MAX_PAGE)


def _cell(name: str, value: object) -> bytes:
    """One Run.parameters entry as wire bytes."""
    return length_delimited(_PARAMETERS, ppb.Parameter(name=name, value=parameter_value(value)).SerializeToString())


def _column_cells(column: ppb.ParameterColumn) -> list[bytes]:
    """Each run's Run.parameters entry for one column, encoded in bulk where the type allows."""
    kind = column.WhichOneof("values")
    name = column.name
    if kind == "numbers":
        values = column.numbers.values
        # Parameter{name, value: ParameterValue{number: <8 bytes>}}: everything but the double is constant.
        value = b"\x09"  # ParameterValue.number, fixed64
        inner = varint(1 << 3 | 2) + varint(len(name.encode())) + name.encode() + b"\x12" + varint(9) + value
        prefix = varint(_PARAMETERS << 3 | 2) + varint(len(inner) + 8) + inner
        raw = struct.pack(f"<{len(values)}d", *values)
        return [prefix + raw[i : i + 8] for i in range(0, len(raw), 8)]
    if kind == "choices":
        levels = [_cell(name, value_of(v)) for v in column.choices.levels]
        try:
            return [levels[i] for i in column.choices.indices]
        except IndexError:
            raise MalformedSample(f"sampler: parameter {name!r}: choice index out of range") from None
    return [_cell(name, v) for v in python_columns(ppb.RunColumns(parameters=[column]))[0][1]]


def input_rows(runs: ppb.RunColumns) -> list[bytes]:
    """Each run's Run.parameters field as wire bytes, in declared order."""
    columns = [_column_cells(c) for c in runs.parameters]
    return list(map(b"".join, zip(*columns, strict=True))) if columns else [b""] * len(runs.run_ids)


class _Inputs:
    """Run.parameters bytes and seeds of the runs of the last sample chunk read."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.sample_id: int | None = None
        self.first_run_id = 0
        self.rows: list[bytes] = []
        self.seeds: list[int] = []

    async def of(self, job: JobRow) -> tuple[bytes, int]:
        if job.legacy_parameters is not None:  # rows written before sample chunks were kept
            return b"".join(_cell(n, v) for n, v in job.legacy_parameters.items()), job.seed or 0
        if job.sample_id is None:
            return b"", 0
        if job.sample_id != self.sample_id:
            await self._load(job.sample_id)
        i = job.run_id - self.first_run_id
        if not 0 <= i < len(self.rows):
            return b"", 0
        return self.rows[i], self.seeds[i]

    async def _load(self, sample_id: int) -> None:
        self.sample_id, self.rows, self.seeds = sample_id, [], []
        stored = await self.store.sample(sample_id)
        if stored is None:
            return
        self.first_run_id, blob = stored
        runs = ppb.RunColumns.FromString(blob)
        self.rows = input_rows(runs)
        self.seeds = list(runs.seeds)


def run_bytes(job: JobRow, seed: int, parameters: bytes) -> bytes:
    """One Run as wire bytes: the job, its seed and inputs (`parameters`, already encoded), and
    its last result's outputs and ending once it is final. (upb builds these few fields faster than
    Python could encode them by hand.)"""
    run = pb.Run(
        job_id=job.job_id,
        run_id=job.run_id,
        seed=seed,
        status=_STATUS[job.status],
        attempts=job.attempts,
        runner_id=job.runner_id or "",
    )
    if job.status in policy.TERMINAL:
        if job.finished_at is not None:
            run.finished_at.FromNanoseconds(int(job.finished_at * 1e9))
        if job.result:
            result = pb.JobResult.FromString(job.result)
            run.outputs.extend(result.outputs)
            run.termination_reason = result.termination_reason
            run.execution_time_secs = result.execution_time_secs
            run.termination_variable = result.termination_variable
            run.termination_condition = result.termination_condition
            if result.HasField("termination_value"):
                run.termination_value = result.termination_value
            if result.HasField("error_message"):
                run.error_message = result.error_message
            run.exit_code = result.exit_code
    return run.SerializeToString() + parameters


async def stream_runs(
    store: Store, batch_id: str, size: int, columnar: bool = False
) -> AsyncIterator[pb.StreamRunsResponse]:
    """Pages of `size` runs in run order, as Run messages or (`columnar`) as a RunsPage (see
    lynx_scheduler.runs_page). Each page is one indexed query; a sample chunk is encoded once (a
    chunk's runs are consecutive), so memory stays at one page and one chunk."""
    inputs = _Inputs(store)
    chunks = ChunkCache(store.sample)
    after = -1
    while columnar:
        rows = await store.runs_rows(batch_id, after, size)
        if not rows:
            return
        yield await columnar_page(rows, chunks)
        if len(rows) < size:
            return
        after = rows[-1][0]  # run_id
    while True:
        jobs = await store.runs_page(batch_id, after, size)
        if not jobs:
            return
        parts: list[bytes] = []
        for job in jobs:
            parameters, seed = await inputs.of(job)
            row = run_bytes(job, seed, parameters)
            parts += (b"\x0a", varint(len(row)), row)  # StreamRunsResponse.runs
        yield pb.StreamRunsResponse.FromString(b"".join(parts))
        if len(jobs) < size:
            return
        after = jobs[-1].run_id

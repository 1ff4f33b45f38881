"""Sample chunks as the scheduler keeps them: checked on arrival, decoded for leases and listings."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from lynx.common.v1 import parameters_pb2 as ppb
from lynx_common.columns import column_values

Columns = list[tuple[str, list]]  # (parameter name, one Python value per run), in declared order


class MalformedSample(ValueError):
    """A chunk from the sampler that does not hold what it should."""


def python_columns(runs: ppb.RunColumns) -> Columns:
    """Every column as a list of Python values (ints stay ints, strings stay strings)."""
    try:
        return [(column.name, column_values(column)) for column in runs.parameters]
    except ValueError as exc:
        raise MalformedSample(f"sampler: {exc}") from None


def check(runs: ppb.RunColumns, names: Sequence[str]) -> None:
    """A chunk has one seed and one value of every declared parameter per run, in declared order."""
    n = len(runs.run_ids)
    got = [c.name for c in runs.parameters]
    if got != list(names):
        missing = [name for name in names if name not in got]
        what = f"lacks parameter {missing[0]!r}" if missing else f"sent parameters {got}, expected {list(names)}"
        raise MalformedSample(f"sampler: chunk from run {runs.run_ids[0] if n else '?'} {what}")
    if n and runs.run_ids[-1] - runs.run_ids[0] != n - 1:
        raise MalformedSample(f"sampler: runs {runs.run_ids[0]}..{runs.run_ids[-1]} are not {n} consecutive runs")
    if len(runs.seeds) != n:
        raise MalformedSample(f"sampler: {len(runs.seeds)} seeds for {n} runs")
    for column in runs.parameters:
        kind = column.WhichOneof("values")
        size = len(column.choices.indices) if kind == "choices" else len(getattr(column, kind).values) if kind else 0
        if size != n:
            raise MalformedSample(f"sampler: parameter {column.name!r} has {size} values for {n} runs")


def at(columns: Columns, index: int) -> dict[str, object]:
    """Run `index` of a chunk as {name: value} in declared order."""
    return {name: values[index] for name, values in columns}


class RunSample(NamedTuple):
    """What the sampler gave one run: its parameters (declared order, typed) and its seed."""

    parameters: dict[str, object]
    seed: int | None


class _Chunk(NamedTuple):
    first_run_id: int
    columns: Columns
    seeds: list[int]


class SampleCache:
    """Decoded sample chunks by sample_id (a few, most recently used), so leasing the runs of one
    chunk decodes it once."""

    def __init__(self, load: Callable[[int], Awaitable[tuple[int, bytes] | None]], size: int = 2) -> None:
        self._load = load
        self._size = size
        self._chunks: OrderedDict[int, _Chunk] = OrderedDict()

    async def of(self, job) -> RunSample:
        """A job's parameters and seed (a JobRow: from its sample chunk, or the JSON and seed
        columns of rows written before chunks were kept)."""
        if job.legacy_parameters is not None:
            return RunSample(job.legacy_parameters, job.seed)
        return await self.run(job.sample_id, job.run_id)

    async def run(self, sample_id: int | None, run_id: int) -> RunSample:
        """Run `run_id` of sample chunk `sample_id` (no parameters and no seed when it is gone)."""
        chunk = await self._chunk(sample_id) if sample_id is not None else None
        if chunk is None:
            return RunSample({}, None)
        i = run_id - chunk.first_run_id
        return RunSample(at(chunk.columns, i), chunk.seeds[i])

    async def _chunk(self, sample_id: int) -> _Chunk | None:
        chunk = self._chunks.get(sample_id)
        if chunk is not None:
            self._chunks.move_to_end(sample_id)
            return chunk
        stored = await self._load(sample_id)
        if stored is None:
            return None
        first_run_id, blob = stored
        runs = ppb.RunColumns.FromString(blob)
        chunk = _Chunk(first_run_id, python_columns(runs), list(runs.seeds))
        self._chunks[sample_id] = chunk
        while len(self._chunks) > self._size:
            self._chunks.popitem(last=False)
        return chunk

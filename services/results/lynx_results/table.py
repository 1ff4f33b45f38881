"""The runs table (GET /batches/{id}/runs.csv and runs.parquet): one row per run, written chunk by chunk
through Arrow so a 100,000-run batch never sits in memory whole."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lynx.common.v1 import batch_config_pb2 as cpb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common import names
from lynx_results import columnar, wire
from lynx_results.records import Inputs, Records, RecordsBuilder, add_chunk, columnar_page, enum_names, inputs_of

HEAD = ("run_id", "job_id", "seed")
TAIL = ("status", "reason", "attempts", "seconds", "runner", "termination_condition")
BLOCK = 1 << 20


@dataclass(frozen=True)
class Layout:
    """The table's columns: the batch's inputs in declared order and its outputs by name, each output with
    its Arrow type (float64 for numbers, bool for flags, string for text); `column` maps an output to its
    column name (prefixed "output." only when it collides with an input or a fixed column)."""

    inputs: Inputs
    outputs: tuple[tuple[str, str], ...]  # (name, "number" | "flag" | "text")

    def column(self, output: str) -> str:
        taken = set(HEAD) | set(TAIL) | set(self.inputs.all)
        return f"output.{output}" if output in taken else output

    def schema(self) -> pa.Schema:
        fields = [pa.field("run_id", pa.int64()), pa.field("job_id", pa.string()), pa.field("seed", pa.int64())]
        fields += [pa.field(n, pa.string() if n in self.inputs.categorical else pa.float64()) for n in self.inputs.all]
        types = {"number": pa.float64(), "flag": pa.bool_(), "text": pa.string()}
        fields += [pa.field(self.column(n), types[k]) for n, k in self.outputs]
        fields += [
            pa.field("status", pa.string()),
            pa.field("reason", pa.string()),
            pa.field("attempts", pa.int32()),
            pa.field("seconds", pa.float64()),
            pa.field("runner", pa.string()),
            pa.field("termination_condition", pa.string()),
        ]
        return pa.schema(fields)


def collect_kinds(chunk: pb.StreamRunsResponse | bytes | Iterable[pb.Run], kinds: dict[str, set[str]]) -> None:
    """Add the output names and value kinds of a chunk of runs (a StreamRuns page, its bytes, or Runs) to
    `kinds` (the first pass of an export)."""
    page = columnar_page(chunk)
    if page is not None:
        columnar.output_kinds(page, kinds)
        return
    if isinstance(chunk, (pb.StreamRunsResponse, bytes)):
        wire.output_kinds(chunk, kinds)
        return
    for run in chunk:
        for p in run.outputs:
            kinds.setdefault(p.name, set()).add(p.value.WhichOneof("kind") or "number")


def layout_from(config: cpb.BatchConfig, kinds: dict[str, set[str]]) -> Layout:
    """The table's columns: a name that is text in any run is a text column; one that is only ever a flag is a
    bool column; other outputs are numbers."""
    outputs = tuple(
        (name, "text" if "text" in k else "flag" if k == {"flag"} else "number") for name, k in sorted(kinds.items())
    )
    return Layout(inputs_of(config), outputs)


class PageSpool:
    """StreamRuns pages (wire bytes) kept in a spooled temporary file (in memory up to 16 MB, then on disk) while
    their output names are collected, then read back: an export reads the scheduler's pages once, not once for
    the columns and again for the rows, and never holds the batch whole in memory."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=16 << 20)
        self.kinds: dict[str, set[str]] = {}
        self.pages = 0

    def write(self, page: bytes) -> None:
        collect_kinds(page, self.kinds)
        self.file.write(len(page).to_bytes(8, "little"))
        self.file.write(page)
        self.pages += 1

    def layout(self, config: cpb.BatchConfig) -> Layout:
        return layout_from(config, self.kinds)

    def read(self) -> Iterator[bytes]:
        """The pages in the order written (then the file is closed)."""
        with self.file as f:
            f.seek(0)
            for _ in range(self.pages):
                yield f.read(int.from_bytes(f.read(8), "little"))


def layout(config: cpb.BatchConfig, chunks: Iterable) -> Layout:
    """The columns of a batch's table, from a first pass over its runs."""
    kinds: dict[str, set[str]] = {}
    for chunk in chunks:
        collect_kinds(chunk, kinds)
    return layout_from(config, kinds)


def _table(lay: Layout, rec: Records) -> pa.Table:
    n = len(rec)
    arrays: list = [pa.array(rec.run_id), pa.array(rec.job_id, pa.string()), pa.array(rec.seed)]
    for name in lay.inputs.all:
        if name in lay.inputs.categorical:
            arrays.append(pa.array(rec.categorical_inputs[name], pa.string()))
        else:
            arrays.append(pa.array(rec.numeric_inputs[name], pa.float64(), from_pandas=True))
    for name, kind in lay.outputs:
        if kind == "text":
            if name in rec.texts:
                arrays.append(pa.array(rec.texts[name], pa.string()))
            elif name in rec.numbers:  # text elsewhere in the batch, only numbers in this chunk
                arrays.append(
                    pa.array([None if np.isnan(v) else repr(float(v)) for v in rec.numbers[name]], pa.string())
                )
            else:
                arrays.append(pa.nulls(n, pa.string()))
        elif name in rec.numbers:
            arrays.append(
                pa.array(rec.numbers[name], pa.float64(), from_pandas=True).cast(
                    pa.bool_() if kind == "flag" else pa.float64()
                )
            )
        else:
            arrays.append(pa.nulls(n, pa.bool_() if kind == "flag" else pa.float64()))
    arrays += [
        pa.array(enum_names(rec.status, names.JOB_STATUS), pa.string()),
        pa.array(enum_names(rec.reason, names.TERMINATION_REASON), pa.string()),
        pa.array(rec.attempts),
        pa.array(rec.seconds),
        pa.array(rec.runner, pa.string()),
        pa.array(rec.condition, pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=lay.schema())


def tables(lay: Layout, chunks: Iterable) -> Iterator[pa.Table]:
    """One Arrow table per chunk of runs."""
    for chunk in chunks:
        builder = RecordsBuilder(lay.inputs)
        add_chunk(builder, chunk)
        yield _table(lay, builder.build())


class CsvEncoder:
    """The table as CSV, one chunk of runs at a time: `header()`, then `encode(chunk)` per chunk."""

    def __init__(self, lay: Layout) -> None:
        self.layout = lay
        self._buf = io.BytesIO()
        self._writer = pacsv.CSVWriter(self._buf, lay.schema())

    def header(self) -> bytes:
        return _drain(self._buf)

    def encode(self, chunk) -> bytes:
        builder = RecordsBuilder(self.layout.inputs)
        add_chunk(builder, chunk)
        self._writer.write_table(_table(self.layout, builder.build()))
        return _drain(self._buf)


def csv_chunks(lay: Layout, chunks: Iterable) -> Iterator[bytes]:
    """The table as CSV (header first, empty cells where a run has no value), one byte string per chunk."""
    encoder = CsvEncoder(lay)
    yield encoder.header()
    for chunk in chunks:
        yield encoder.encode(chunk)


def _drain(buf: io.BytesIO) -> bytes:
    data = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return data


class ParquetSpool:
    """The table as Parquet in a spooled temporary file (in memory up to 16 MB, then on disk; a Parquet footer
    comes last, so the file is complete only after `finish()`), one row group per chunk of runs."""

    def __init__(self, lay: Layout) -> None:
        self.layout = lay
        self.file = tempfile.SpooledTemporaryFile(max_size=16 << 20)
        self._writer = pq.ParquetWriter(self.file, lay.schema(), compression="zstd")
        self.rows = 0

    def write(self, chunk) -> None:
        builder = RecordsBuilder(self.layout.inputs)
        add_chunk(builder, chunk)
        table = _table(self.layout, builder.build())
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def finish(self):
        """Close the Parquet file and rewind it; returns the file to read."""
        self._writer.close()
        self.file.seek(0)
        return self.file


def write_parquet(lay: Layout, chunks: Iterable, sink) -> int:
    """Write the table as Parquet to `sink` (path or binary file), one row group per chunk; returns rows."""
    rows = 0
    with pq.ParquetWriter(sink, lay.schema(), compression="zstd") as writer:
        for table in tables(lay, chunks):
            if table.num_rows:
                writer.write_table(table)
                rows += table.num_rows
    return rows


def parquet_chunks(lay: Layout, chunks: Iterable) -> Iterator[bytes]:
    """The table as Parquet bytes, read back in blocks from a ParquetSpool."""
    spool = ParquetSpool(lay)
    for chunk in chunks:
        spool.write(chunk)
    with spool.finish() as f:
        while block := f.read(BLOCK):
            yield block

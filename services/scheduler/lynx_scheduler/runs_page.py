"""A page of a batch's runs as columns (StreamRunsResponse.page, a lynx.scheduler.v1.RunsPage).

The jobs come from the store as plain tuples, taken column-wise. Inputs are slices of the stored sample chunks
(RunColumns): a `numbers` column is cut from its packed bytes, other columns are sliced in C, never value by
value. Endings and outputs come from each job's stored JobResult, read through views of JobResult parsed in C:
every result of the page framed as one repeated message (the per-run fields), and all of them concatenated, with
an output named _MARK after each, as one message (protobuf merges repeated fields, so its outputs hold every
run's names end to end and one list of values per kind). When every run gave the same names of one kind, or none
(the usual batch), each output column is a stride of that list; a field no run sets is not read per run. Only a
page mixing kinds is read run by run. No numpy: the scheduler does not depend on it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from itertools import chain

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.columns import parameter_value
from lynx_common.names import JOB_STATUS
from lynx_scheduler import policy

F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "lynx_scheduler.result_view"
KINDS = ("number", "integer", "text", "flag")  # ParameterValue's oneof, in field-number order
_STATUS = {name: JOB_STATUS.value(name) for name in policy.JOB_STATUSES}
_COLUMN = {"number": "numbers", "integer": "integers", "text": "texts", "flag": "flags"}  # OutputColumn's oneof
_EMPTY = b"\x0a\x00"  # Results.results: an empty JobResult (a run without a final result)
_MARK = "\x00"  # an output name after each result in a page's merged parse (see _same_outputs)


def _results_class() -> tuple:
    """Results {repeated Result results = 1}; Result is JobResult's fields this page reads (proto2, so the
    optional ones keep their presence), with `outputs` (16) a singular Params {names, Values}."""
    f = descriptor_pb2.FileDescriptorProto(name="lynx_scheduler/result_view.proto", package=_PACKAGE, syntax="proto2")
    values = f.message_type.add(name="Values")
    kinds = (F.TYPE_DOUBLE, F.TYPE_INT64, F.TYPE_STRING, F.TYPE_BOOL)
    for number, (name, kind) in enumerate(zip(KINDS, kinds, strict=True), start=1):
        values.field.add(name=name, number=number, type=kind, label=F.LABEL_REPEATED)
    params = f.message_type.add(name="Params")
    params.field.add(name="name", number=1, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    params.field.add(name="value", number=2, type=F.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Values", label=1)
    result = f.message_type.add(name="Result")
    for name, number, kind in (
        ("execution_time_secs", 3, F.TYPE_DOUBLE),
        ("error_message", 6, F.TYPE_STRING),
        ("exit_code", 7, F.TYPE_INT32),
        ("termination_reason", 8, F.TYPE_INT32),  # an enum: the same varint
        ("termination_variable", 13, F.TYPE_STRING),
        ("termination_condition", 14, F.TYPE_STRING),
        ("termination_value", 15, F.TYPE_DOUBLE),
    ):
        result.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
    result.field.add(name="outputs", number=16, type=F.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Params", label=1)
    results = f.message_type.add(name="Results")
    results.field.add(
        name="results", number=1, type=F.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Result", label=F.LABEL_REPEATED
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{m}")) for m in ("Results", "Result")
    )


Results, Result = _results_class()


def varint(n: int) -> bytes:
    """A protobuf base-128 varint."""
    out = bytearray()
    while True:
        bits = n & 0x7F
        n >>= 7
        if n:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


_SHORT = 1 << 14
_VARINTS = [varint(n) for n in range(_SHORT)]  # lengths of most results


def length_delimited(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


_MARKED = length_delimited(16, length_delimited(1, _MARK.encode()))  # JobResult.outputs: Parameter{name}


def packed_doubles(column: ppb.ParameterColumn) -> bytes | None:
    """The packed little-endian doubles of a `numbers` column (its values' own wire bytes), else None."""
    if column.WhichOneof("values") != "numbers":
        return None
    raw = column.numbers.SerializeToString()  # DoubleColumn.values: tag, length, then 8 bytes per value
    return raw[len(raw) - 8 * len(column.numbers.values) :]


def slice_columns(
    runs: ppb.RunColumns, index: range | list[int], out: ppb.RunColumns, doubles: Sequence[bytes | None] = ()
) -> None:
    """Copy runs `index` (positions in the chunk, ascending) of a chunk into `out`: a plain slice of every
    column for a range, else a gather. `doubles` (packed_doubles of each column) lets a range of a numbers
    column be cut from its wire bytes, never read value by value."""
    if isinstance(index, range):
        start, stop = index.start, index.stop

        def take(values):
            return values[start:stop]
    else:

        def take(values):
            return [values[i] for i in index]

    out.run_ids.extend(take(runs.run_ids))
    out.seeds.extend(take(runs.seeds))
    parts: list[bytes] = []  # RunColumns.parameters entries as wire bytes, in declared order
    for i, column in enumerate(runs.parameters):
        raw = doubles[i] if i < len(doubles) and isinstance(index, range) else None
        if raw is not None:  # ParameterColumn{name = 1, numbers = 2: DoubleColumn{values = 1, packed}}
            numbers = length_delimited(1, raw[8 * start : 8 * stop])
            body = length_delimited(1, column.name.encode()) + length_delimited(2, numbers)
        else:
            kind = column.WhichOneof("values")
            sliced = ppb.ParameterColumn(name=column.name)
            if kind == "choices":
                sliced.choices.levels.extend(column.choices.levels)
                sliced.choices.indices.extend(take(column.choices.indices))
            elif kind is not None:
                getattr(sliced, kind).values.extend(take(getattr(column, kind).values))
            body = sliced.SerializeToString()
        parts.append(length_delimited(3, body))
    out.MergeFromString(b"".join(parts))


def legacy_columns(run_id: int, seed: int, parameters: dict, out: ppb.RunColumns) -> None:
    """One run written before sample chunks were kept, as a one-run RunColumns (a flag as a one-level choice)."""
    out.run_ids.append(run_id)
    out.seeds.append(seed)
    for name, value in parameters.items():
        column = out.parameters.add(name=name)
        v = parameter_value(value)
        kind = v.WhichOneof("kind")
        if kind == "number":
            column.numbers.values.append(v.number)
        elif kind == "integer":
            column.integers.values.append(v.integer)
        elif kind == "text":
            column.texts.values.append(v.text)
        else:
            column.choices.levels.append(v)
            column.choices.indices.append(0)


class ChunkCache:
    """The last sample chunk read: (first run id, the parsed RunColumns, packed_doubles of each column). A
    page's runs come from one or two consecutive chunks."""

    def __init__(self, load: Callable[[int], Awaitable[tuple[int, bytes] | None]]) -> None:
        self._load = load
        self._id: int | None = None
        self._chunk: tuple[int, ppb.RunColumns, list[bytes | None]] | None = None

    async def get(self, sample_id: int) -> tuple[int, ppb.RunColumns, list[bytes | None]] | None:
        if sample_id != self._id:
            stored = await self._load(sample_id)
            self._id, self._chunk = sample_id, None
            if stored is not None:
                runs = ppb.RunColumns.FromString(stored[1])
                self._chunk = (stored[0], runs, [packed_doubles(c) for c in runs.parameters])
        return self._chunk


async def _inputs(
    run_ids: Sequence[int],
    sample_ids: Sequence[int | None],
    legacy: Sequence[str | None],
    job_seeds: Sequence[int | None],
    chunks: ChunkCache,
    page: pb.RunsPage,
) -> list[int]:
    """Fill page.inputs with the runs' inputs (a slice per sample chunk the page touches); returns each run's
    seed (0 when its chunk is gone, as in a Run)."""
    n = len(run_ids)
    seeds = [0] * n
    i = 0
    while i < n:
        if legacy[i]:  # a row written before sample chunks were kept: JSON parameters and its own seed
            seeds[i] = job_seeds[i] or 0
            legacy_columns(run_ids[i], seeds[i], json.loads(legacy[i]), page.inputs.add())
            i += 1
            continue
        sample_id, j = sample_ids[i], i + 1
        while j < n and sample_ids[j] == sample_id and not legacy[j]:
            j += 1
        chunk = await chunks.get(sample_id) if sample_id is not None else None
        if chunk is not None:
            first, runs, doubles = chunk
            size = len(runs.run_ids)
            lo, hi = run_ids[i] - first, run_ids[j - 1] - first
            if 0 <= lo and hi < size and hi - lo == j - 1 - i:  # consecutive runs inside the chunk: a slice
                rows, index = range(i, j), range(lo, hi + 1)
            else:  # a run outside the chunk has no inputs
                rows = [k for k in range(i, j) if 0 <= run_ids[k] - first < size]
                index = [run_ids[k] - first for k in rows]
            if rows:
                sliced = page.inputs.add()
                slice_columns(runs, index, sliced, doubles)
                if isinstance(rows, range):
                    seeds[i:j] = sliced.seeds
                else:
                    for k, seed in zip(rows, sliced.seeds, strict=True):
                        seeds[k] = seed
        i = j
    return seeds


def _same_outputs(merged, blob_rows: list[int], page: pb.RunsPage) -> bool:
    """page.outputs when every run either gave the same names in the same order, all of one kind, or gave none
    (the usual batch). `merged` is the page's results parsed as one message, each followed by an output named
    _MARK: its outputs hold every run's names end to end with a mark after each run, and its values every value
    (a mark has none), so a column is a stride of them. False when the page is not like that."""
    names = list(merged.outputs.name)
    if names.count(_MARK) != len(blob_rows):  # some run has an output named like the mark itself
        return False
    if not blob_rows:
        return True
    pattern = names[: names.index(_MARK) + 1]
    if len(pattern) > 1 and names == pattern * len(blob_rows):  # every run gave the same outputs: done quickly
        counts = [len(pattern) - 1] * len(blob_rows)
    else:
        counts = _counts(names, len(blob_rows))
    return _strides(merged, names, blob_rows, counts, page)


def _counts(names: list[str], runs: int) -> list[int]:
    """How many outputs each of `runs` results gave: the gaps between the marks."""
    counts, end = [], -1
    for _ in range(runs):
        start, end = end + 1, names.index(_MARK, end + 1)
        counts.append(end - start)
    return counts


def _strides(merged, names: list[str], blob_rows: list[int], counts: list[int], page: pb.RunsPage) -> bool:
    """page.outputs as strides of the merged values when every run gave the same names (or none), all of one
    kind; False otherwise."""
    c = max(counts)
    if c == 0:
        return True
    if not set(counts) <= {0, c}:
        return False
    first = counts.index(c)
    first = sum(counts[:first]) + first  # where the first run with outputs starts
    pattern, marks = names[first : first + c + 1], [_MARK]
    if names != list(chain.from_iterable(pattern if n else marks for n in counts)):
        return False
    values = merged.outputs.value
    for kind in KINDS:
        column = getattr(values, kind)
        if len(column):
            break
    if len(column) != len(names) - len(blob_rows):  # kinds mixed or values unset
        return False
    rows = [row for row, n in zip(blob_rows, counts, strict=True) if n]
    every = list(column)
    for j, name in enumerate(pattern[:c]):
        getattr(page.outputs.add(name=name, rows=rows), _COLUMN[kind]).values.extend(every[j::c])
    return True


def _outputs(results, page: pb.RunsPage, blobs: list[bytes | None], merged) -> None:
    """page.outputs from the parsed result views: one column per (name, kind), in order of first appearance."""
    if _same_outputs(merged, [row for row, blob in enumerate(blobs) if blob], page):
        return
    columns: dict[tuple[str, str | None], tuple[list, list]] = {}
    blocks: dict[tuple[str, tuple], tuple[list, list]] = {}  # (kind, names) -> (rows, values per run)
    for row, result in enumerate(results):
        params = result.outputs
        names = params.name
        if not names:
            continue
        values = params.value
        for kind in KINDS:
            column = getattr(values, kind)
            if len(column):
                break
        if len(column) == len(names):  # the first kind present holds every value: all of one kind
            key = (kind, tuple(names))
            block = blocks.get(key)
            if block is None:
                block = blocks[key] = ([], [])
                for name in key[1]:
                    columns.setdefault((name, kind), ([], []))
            block[0].append(row)
            block[1].append(column)
            continue
        for p in pb.JobResult.FromString(blobs[row]).outputs:  # kinds mixed (or values unset): one by one
            kind = p.value.WhichOneof("kind")
            rows, vals = columns.setdefault((p.name, kind), ([], []))
            rows.append(row)
            if kind is not None:
                vals.append(getattr(p.value, kind))
    for (kind, names), (rows, values) in blocks.items():
        for name, column in zip(names, zip(*values, strict=True), strict=True):
            col = columns[(name, kind)]
            col[0].extend(rows)
            col[1].extend(column)
    for (name, kind), (rows, values) in columns.items():
        out = page.outputs.add(name=name, rows=rows)
        if kind is not None:
            getattr(out, _COLUMN[kind]).values.extend(values)


async def columnar_page(rows: list[tuple], chunks: ChunkCache) -> pb.StreamRunsResponse:
    """A StreamRunsResponse whose `page` holds a page of jobs (Store.runs_rows: tuples of RUNS_COLUMNS, in run
    order) as columns."""
    run_ids, job_ids, job_seeds, sample_ids, legacy, statuses, attempts, runner_ids, results_, finished_at = zip(
        *rows, strict=True
    )
    response = pb.StreamRunsResponse()
    page = response.page  # filled in place: StreamRunsResponse(page=...) would copy it
    page.run_ids.extend(run_ids)
    page.job_ids.extend(job_ids)
    page.statuses.extend(map(_STATUS.__getitem__, statuses))
    page.attempts.extend(attempts)
    page.runner_ids.extend([r or "" for r in runner_ids])
    page.seeds.extend(await _inputs(run_ids, sample_ids, legacy, job_seeds, chunks, page))
    terminal = policy.TERMINAL
    ended = [s in terminal for s in statuses]
    blobs = [r if e and r else None for e, r in zip(ended, results_, strict=True)]
    page.finished_at_unix_nanos.extend(
        [int(f * 1e9) if e and f is not None else 0 for e, f in zip(ended, finished_at, strict=True)]
    )
    v = _VARINTS
    framed = [b"\x0a" + (v[len(b)] if len(b) < _SHORT else varint(len(b))) + b if b else _EMPTY for b in blobs]
    results = Results.FromString(b"".join(framed)).results
    given = [b for b in blobs if b]
    merged = Result.FromString(_MARKED.join(given) + _MARKED if given else b"")
    n = len(blobs)
    page.termination_reasons.extend([r.termination_reason for r in results])
    page.execution_time_secs.extend([r.execution_time_secs for r in results])
    # a field no result of the page sets (merged lacks it) is the default in every run: no per-run read
    for field, column, default in (
        ("termination_variable", page.termination_variables, ""),
        ("termination_condition", page.termination_conditions, ""),
        ("exit_code", page.exit_codes, 0),
    ):
        column.extend([getattr(r, field) for r in results] if merged.HasField(field) else [default] * n)
    if merged.HasField("termination_value"):
        for row, r in enumerate(results):
            if r.HasField("termination_value"):
                page.termination_value_rows.append(row)
                page.termination_values.append(r.termination_value)
    if merged.HasField("error_message"):
        for row, r in enumerate(results):
            if r.HasField("error_message"):
                page.error_message_rows.append(row)
                page.error_messages.append(r.error_message)
    _outputs(results, page, blobs, merged)
    return response

"""A batch's runs (lynx.scheduler.v1.Run messages) as columnar numpy arrays, built chunk by chunk."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from lynx.common.v1 import batch_config_pb2 as cpb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common import names
from lynx_results import columnar, wire

FINISHED = (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED)
_NO_TIME = math.nan


@dataclass(frozen=True)
class Inputs:
    """The batch's dispersed inputs by kind: numeric ones are correlated, `choice` ones reported by level;
    constants are numeric but not dispersed."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    constant: tuple[str, ...]
    declared: tuple[str, ...] = ()  # every input in the config's order

    @property
    def all(self) -> tuple[str, ...]:
        return self.declared or (*self.numeric, *self.categorical, *self.constant)


def inputs_of(config: cpb.BatchConfig) -> Inputs:
    """Which declared dispersions are numeric, categorical (`choice`) or constant."""
    numeric, categorical, constant = [], [], []
    for d in config.dispersions:
        kind = d.distribution.type
        (categorical if kind == "choice" else constant if kind == "constant" else numeric).append(d.name)
    return Inputs(tuple(numeric), tuple(categorical), tuple(constant), tuple(d.name for d in config.dispersions))


@dataclass
class Records:
    """Columns of a batch's runs, one element per run, in arrival (run_id) order.

    Numeric inputs and numeric or boolean outputs are float64 (NaN where absent, booleans 0/1);
    categorical inputs and text outputs are object arrays of str (None where absent)."""

    inputs: Inputs
    run_id: np.ndarray
    job_id: np.ndarray
    seed: np.ndarray
    status: np.ndarray
    reason: np.ndarray
    attempts: np.ndarray
    seconds: np.ndarray
    runner: np.ndarray
    condition: np.ndarray  # "variable condition" of the early-termination condition that fired, else ""
    finished_at: np.ndarray  # epoch seconds, NaN while unfinished
    error: np.ndarray
    numeric_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    categorical_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    texts: dict[str, np.ndarray] = field(default_factory=dict)
    present: dict[str, np.ndarray] = field(default_factory=dict)  # per number: the run gave a number (NaN too)
    booleans: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.run_id)

    @property
    def finished(self) -> np.ndarray:
        return np.isin(self.status, FINISHED)

    @property
    def failed(self) -> np.ndarray:
        """True for a finished run whose final status is not success (early termination included)."""
        return self.status == pb.JOB_STATUS_FAILED

    def status_names(self) -> list[str]:
        return enum_names(self.status, names.JOB_STATUS).tolist()

    def reason_names(self) -> list[str]:
        return enum_names(self.reason, names.TERMINATION_REASON).tolist()


def enum_names(values: np.ndarray, enum: names.EnumNames) -> np.ndarray:
    """Each enum value's REST name, as an object array (one lookup per distinct value)."""
    codes, inverse = np.unique(values, return_inverse=True)
    return np.array([enum.name(int(c)) for c in codes] + [""], dtype=object)[inverse.reshape(-1)]


def _text(x: object) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    return "" if x is None else str(x)


class RecordsBuilder:
    """Accumulates Run messages chunk by chunk; `build()` returns the Records.

    Memory is one float per run per numeric column: 100,000 runs x 25 columns is 20 MB."""

    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self._numeric_in = set(inputs.numeric) | set(inputs.constant)
        self._base: dict[str, list] = {
            k: []
            for k in (
                "run_id",
                "job_id",
                "seed",
                "status",
                "reason",
                "attempts",
                "seconds",
                "runner",
                "condition",
                "finished_at",
                "error",
            )
        }
        self._inputs: dict[str, tuple[list, list]] = {}  # name -> (rows, values), sparse while building
        self._outputs: dict[str, tuple[list, list]] = {}
        self._booleans: set[str] = set()
        self._texts: set[str] = set()
        # (kind, names) -> (rows, value tuples): runs whose parameters (outputs) were all one kind, read fast
        self._in_blocks: dict[tuple, tuple[list, list]] = {}
        self._out_blocks: dict[tuple, tuple[list, list]] = {}
        self._n = 0
        self._columnar = columnar.ColumnarParts()

    def add_columnar(self, page: pb.RunsPage) -> None:
        """Append a columnar StreamRuns page (StreamRunsResponse.page); one builder reads one kind of page."""
        self._columnar.add(page)

    def add(self, runs: Iterable[pb.Run]) -> None:
        """Append a chunk of runs."""
        b = self._base
        run_id, job_id, seed, status, reason = b["run_id"], b["job_id"], b["seed"], b["status"], b["reason"]
        attempts, seconds, runner, condition = b["attempts"], b["seconds"], b["runner"], b["condition"]
        finished_at, error = b["finished_at"], b["error"]
        row = self._n
        for run in runs:
            run_id.append(run.run_id)
            job_id.append(run.job_id)
            seed.append(run.seed)
            status.append(run.status)
            reason.append(run.termination_reason)
            attempts.append(run.attempts)
            seconds.append(run.execution_time_secs)
            runner.append(run.runner_id)
            variable = run.termination_variable
            condition.append(f"{variable} {run.termination_condition}" if variable else "")
            at = run.finished_at
            finished_at.append(at.seconds + at.nanos * 1e-9 if run.HasField("finished_at") else _NO_TIME)
            error.append(run.error_message)
            _collect(run.parameters, row, self._inputs, None, None)
            _collect(run.outputs, row, self._outputs, self._booleans, self._texts)
            row += 1
        self._n = row

    def add_page(self, page: pb.StreamRunsResponse | bytes) -> None:
        """Append a StreamRuns page (the message or its bytes) through the fast view of lynx_results.wire: the
        same result as add(page.runs), several times faster for runs whose values are each all of one kind. A
        columnar page goes to add_columnar."""
        columns = columnar_page(page)
        if columns is not None:
            self.add_columnar(columns)
            return
        b = self._base
        run_id, job_id, seed, status, reason = b["run_id"], b["job_id"], b["seed"], b["status"], b["reason"]
        attempts, seconds, runner, condition = b["attempts"], b["seconds"], b["runner"], b["condition"]
        finished_at, error = b["finished_at"], b["error"]
        originals = None
        row = self._n
        uniform = wire.uniform
        in_blocks, out_blocks = self._in_blocks, self._out_blocks
        for i, run in enumerate(wire.page_view(page).runs):
            run_id.append(run.run_id)
            job_id.append(run.job_id)
            seed.append(run.seed)
            status.append(run.status)
            reason.append(run.termination_reason)
            attempts.append(run.attempts)
            seconds.append(run.execution_time_secs)
            runner.append(run.runner_id)
            variable = run.termination_variable
            condition.append(f"{variable} {run.termination_condition}" if variable else "")
            at = run.finished_at
            secs = at.seconds
            finished_at.append(secs + at.nanos * 1e-9 if secs else _NO_TIME)  # unset: 0, no run ends in 1970
            error.append(run.error_message)
            merged_in, merged_out = uniform(run.parameters), uniform(run.outputs)
            if merged_in is None or merged_out is None:  # values of mixed kinds: read this run's Parameters
                if originals is None:
                    originals = (pb.StreamRunsResponse.FromString(page) if isinstance(page, bytes) else page).runs
                if merged_in is None:
                    _collect(originals[i].parameters, row, self._inputs, None, None)
                if merged_out is None:
                    _collect(originals[i].outputs, row, self._outputs, self._booleans, self._texts)
            for merged, blocks in ((merged_in, in_blocks), (merged_out, out_blocks)):
                if merged is not None and merged[1]:
                    key = merged[:2]
                    block = blocks.get(key)
                    if block is None:
                        block = blocks[key] = ([], [])
                    block[0].append(row)
                    block[1].append(tuple(merged[2]))
            row += 1
        self._n = row

    def _merge_blocks(self) -> None:
        """Move the fast-read blocks into the sparse columns (whole columns at a time)."""
        for blocks, cols, outputs in ((self._in_blocks, self._inputs, False), (self._out_blocks, self._outputs, True)):
            for (kind, block_names), (rows, values) in blocks.items():
                for name, column in zip(block_names, zip(*values, strict=True), strict=True):
                    col = cols.get(name)
                    if col is None:
                        col = cols[name] = ([], [])
                    col[0].extend(rows)
                    col[1].extend(column)
                    if outputs and kind == "flag":
                        self._booleans.add(name)
                    elif outputs and kind == "text":
                        self._texts.add(name)
            blocks.clear()

    def build(self) -> Records:
        if self._columnar.n:
            if self._n:
                raise ValueError("a RecordsBuilder reads either columnar pages or Run messages, not both")
            return self._build_columnar()
        self._merge_blocks()
        n, b = self._n, self._base
        rec = Records(
            inputs=self.inputs,
            run_id=np.asarray(b["run_id"], dtype=np.int64),
            job_id=np.asarray(b["job_id"], dtype=object),
            seed=np.asarray(b["seed"], dtype=np.int64),
            status=np.asarray(b["status"], dtype=np.int8),
            reason=np.asarray(b["reason"], dtype=np.int8),
            attempts=np.asarray(b["attempts"], dtype=np.int32),
            seconds=np.asarray(b["seconds"], dtype=np.float64),
            runner=np.asarray(b["runner"], dtype=object),
            condition=np.asarray(b["condition"], dtype=object),
            finished_at=np.asarray(b["finished_at"], dtype=np.float64),
            error=np.asarray(b["error"], dtype=object),
            booleans=frozenset(self._booleans - self._texts),
        )
        for name, column in self._inputs.items():
            if name in self._numeric_in:
                rec.numeric_inputs[name] = _floats(column, n)
            else:
                rec.categorical_inputs[name] = _strings(column, n)
        for name, column in self._outputs.items():
            if name in self._texts:  # text in some run: a text column, and its numbers (if any) for statistics
                rec.texts[name] = _strings(column, n)
                if any(v.__class__ in (int, float, bool) for v in column[1]):
                    rec.numbers[name], rec.present[name] = _floats(column, n), _present(column, n)
            else:
                rec.numbers[name], rec.present[name] = _floats(column, n), _present(column, n)
        for name in self.inputs.numeric + self.inputs.constant:
            rec.numeric_inputs.setdefault(name, np.full(n, np.nan))
        for name in self.inputs.categorical:
            rec.categorical_inputs.setdefault(name, np.full(n, None, dtype=object))
        return rec

    def _build_columnar(self) -> Records:
        parts = self._columnar
        n, b = parts.n, {k: np.concatenate(v) for k, v in parts.base.items()}
        kinds = {name: {p[0] for p in ps} for name, ps in parts.outputs.items()}
        texts = {name for name, k in kinds.items() if "text" in k}
        rec = Records(
            inputs=self.inputs,
            booleans=frozenset(name for name, k in kinds.items() if "flag" in k) - texts,
            **{k: v.astype(np.float64) if k == "seconds" else v for k, v in b.items()},
        )
        for name, ps in parts.inputs.items():
            if name in self._numeric_in:
                rec.numeric_inputs[name] = columnar.floats(ps, n)
            else:
                rec.categorical_inputs[name] = columnar.strings(ps, n)
        for name, ps in parts.outputs.items():
            if name in texts:
                rec.texts[name] = columnar.strings(ps, n)
                if kinds[name] & {"number", "integer", "flag"}:
                    rec.numbers[name], rec.present[name] = columnar.floats(ps, n), columnar.present(ps, n)
            else:
                rec.numbers[name], rec.present[name] = columnar.floats(ps, n), columnar.present(ps, n)
        for name in self.inputs.numeric + self.inputs.constant:
            rec.numeric_inputs.setdefault(name, np.full(n, np.nan))
        for name in self.inputs.categorical:
            rec.categorical_inputs.setdefault(name, np.full(n, None, dtype=object))
        return rec


def _collect(params, row: int, cols: dict, booleans: set | None, texts: set | None) -> None:
    for p in params:
        v = p.value
        kind = v.WhichOneof("kind")
        name = p.name
        col = cols.get(name)
        if col is None:
            col = cols[name] = ([], [])
        col[0].append(row)
        col[1].append(getattr(v, kind) if kind else None)
        if booleans is not None:
            if kind == "flag":
                booleans.add(name)
            elif kind == "text":
                texts.add(name)


def _floats(column: tuple[list, list], n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    rows, values = column
    if rows:
        try:
            out[rows] = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):  # a text value or None among numbers
            out[rows] = [float(v) if isinstance(v, (int, float)) else np.nan for v in values]
    return out


def _present(column: tuple[list, list], n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    rows, values = column
    try:
        np.asarray(values, dtype=np.float64)  # all numbers (or flags): present wherever given
        out[rows] = True
    except (TypeError, ValueError):
        out[[r for r, v in zip(rows, values, strict=True) if v.__class__ in (int, float, bool)]] = True
    return out


def _strings(column: tuple[list, list], n: int) -> np.ndarray:
    out = np.full(n, None, dtype=object)
    rows, values = column
    if rows:
        out[rows] = [_text(v) if v is not None else None for v in values]
    return out


def columnar_page(chunk: object) -> pb.RunsPage | None:
    """The RunsPage of a columnar StreamRuns page (message or bytes), else None. A serialized columnar page
    starts with field 2 (`page`), a row page with field 1 (`runs`)."""
    if isinstance(chunk, bytes):
        return pb.StreamRunsResponse.FromString(chunk).page if chunk[:1] == b"\x12" else None
    if isinstance(chunk, pb.StreamRunsResponse) and chunk.HasField("page"):
        return chunk.page
    return None


def add_chunk(builder: RecordsBuilder, chunk: pb.StreamRunsResponse | bytes | Iterable[pb.Run]) -> None:
    """A StreamRuns page (message or bytes; columnar or not) through the fast path, any other iterable of Runs as
    it is."""
    page = columnar_page(chunk)
    if page is not None:
        builder.add_columnar(page)
    elif isinstance(chunk, (pb.StreamRunsResponse, bytes)):
        builder.add_page(chunk)
    else:
        builder.add(chunk)


def records(config: cpb.BatchConfig, chunks: Iterable) -> Records:
    """All runs of a batch as columns, from an iterable of StreamRuns pages (messages or bytes) or of chunks of
    Run messages."""
    builder = RecordsBuilder(inputs_of(config))
    for chunk in chunks:
        add_chunk(builder, chunk)
    return builder.build()

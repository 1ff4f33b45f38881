"""Columnar StreamRuns pages (lynx.scheduler.v1.RunsPage) read straight into numpy arrays.

A page's double columns are read with np.frombuffer from the column message's own bytes (a packed repeated
double is the array's memory, so serializing it is a copy in C); other scalar columns go through np.fromiter.
Python touches a value only to render it as text (a number in a column that is text elsewhere, a categorical
input's level). The Records built equal those of the row path (lynx_results.records) for the same runs."""

from __future__ import annotations

import numpy as np

from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.columns import value_of

_NO_TIME = np.nan
_NANOS = 1_000_000_000
# A part of a column: (kind, rows in the batch, values). Kinds: "number" (float64 array), "integer" (int64
# array), "text" (list of str), "flag" (bool array), "choice" ((levels as Python values, int indices)), None.
Part = tuple[str | None, np.ndarray, object]


def doubles(column: ppb.DoubleColumn) -> np.ndarray:
    """A DoubleColumn as float64, from its wire bytes (tag, length, then the packed little-endian doubles)."""
    raw = column.SerializeToString()
    return np.frombuffer(raw, np.float64, offset=len(raw) - 8 * len(column.values)).copy()


def ints(values, dtype=np.int64) -> np.ndarray:
    return np.fromiter(values, dtype, len(values))


def _parameter_part(column: ppb.ParameterColumn, rows: np.ndarray) -> Part:
    kind = column.WhichOneof("values")
    if kind == "numbers":
        return "number", rows, doubles(column.numbers)
    if kind == "integers":
        return "integer", rows, ints(column.integers.values)
    if kind == "texts":
        return "text", rows, list(column.texts.values)
    if kind == "choices":
        levels = [value_of(v) for v in column.choices.levels]
        indices = ints(column.choices.indices, np.int32)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(levels)):
            raise ValueError(f"parameter {column.name!r}: choice index out of range")
        return "choice", rows, (levels, indices)
    return None, rows[:0], None


def _output_part(column: pb.OutputColumn, rows: np.ndarray) -> Part:
    kind = column.WhichOneof("values")
    if kind == "numbers":
        return "number", rows, doubles(column.numbers)
    if kind == "integers":
        return "integer", rows, ints(column.integers.values)
    if kind == "texts":
        return "text", rows, list(column.texts.values)
    if kind == "flags":
        return "flag", rows, ints(column.flags.values, np.bool_)
    return None, rows, None


def output_kinds(page: pb.RunsPage, kinds: dict[str, set[str]]) -> None:
    """Add the output names of a page and the kinds of their values to `kinds`."""
    for column in page.outputs:
        kind = column.WhichOneof("values")
        kinds.setdefault(column.name, set()).add(
            {"numbers": "number", "integers": "integer", "texts": "text", "flags": "flag"}.get(kind, "number")
        )


class ColumnarParts:
    """The pages read so far: per-run arrays per page, inputs and outputs as parts per name."""

    def __init__(self) -> None:
        self.n = 0
        self.base: dict[str, list[np.ndarray]] = {}
        self.inputs: dict[str, list[Part]] = {}
        self.outputs: dict[str, list[Part]] = {}

    def add(self, page: pb.RunsPage) -> None:
        n, offset = len(page.run_ids), self.n
        run_ids = ints(page.run_ids)
        variables, conditions = page.termination_variables, page.termination_conditions
        nanos = ints(page.finished_at_unix_nanos)
        finished = np.where(nanos == 0, _NO_TIME, nanos // _NANOS + (nanos % _NANOS) * 1e-9)
        error = np.full(n, "", dtype=object)
        if page.error_message_rows:
            error[ints(page.error_message_rows)] = list(page.error_messages)
        condition = np.full(n, "", dtype=object)
        fired = [i for i, v in enumerate(variables) if v]
        if fired:
            condition[fired] = [f"{variables[i]} {conditions[i]}" for i in fired]
        columns = {
            "run_id": run_ids,
            "job_id": np.array(list(page.job_ids), dtype=object),
            "seed": ints(page.seeds),
            "status": ints(page.statuses, np.int8),
            "reason": ints(page.termination_reasons, np.int8),
            "attempts": ints(page.attempts, np.int32),
            "seconds": np.fromiter(page.execution_time_secs, np.float64, n),
            "runner": np.array(list(page.runner_ids), dtype=object),
            "condition": condition,
            "finished_at": finished,
            "error": error,
        }
        for name, array in columns.items():
            self.base.setdefault(name, []).append(array)
        for runs in page.inputs:
            rows = offset + np.searchsorted(run_ids, ints(runs.run_ids))
            for column in runs.parameters:
                self.inputs.setdefault(column.name, []).append(_parameter_part(column, rows))
        for column in page.outputs:
            rows = offset + ints(column.rows)
            self.outputs.setdefault(column.name, []).append(_output_part(column, rows))
        self.n += n


def _text(x: object) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    return "" if x is None else str(x)


def floats(parts: list[Part], n: int) -> np.ndarray:
    """A numeric column: numbers, integers and flags as float64, NaN where absent or text."""
    out = np.full(n, np.nan)
    for kind, rows, values in parts:
        if kind in ("number", "integer", "flag"):
            out[rows] = values
        elif kind == "choice":
            levels, indices = values
            as_float = np.array([float(v) if isinstance(v, (int, float)) else np.nan for v in levels] or [np.nan])
            out[rows] = as_float[indices]
    return out


def present(parts: list[Part], n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    for kind, rows, _ in parts:
        if kind in ("number", "integer", "flag"):
            out[rows] = True
    return out


def strings(parts: list[Part], n: int) -> np.ndarray:
    """A text column: every value as the row path renders it (flags "true"/"false"), None where absent."""
    out = np.full(n, None, dtype=object)
    for kind, rows, values in parts:
        if kind == "text":
            out[rows] = values
        elif kind == "choice":
            levels, indices = values
            out[rows] = np.array([_text(v) if v is not None else None for v in levels] or [None], dtype=object)[indices]
        elif kind is not None:
            out[rows] = [_text(v) for v in values.tolist()]
    return out

"""The runs of one batch as columns, sorted, filtered and paged in memory (numpy), with the charts' data.

Pure logic: no grpc, no aiohttp. `RunsTable.build` takes one dict per run (see `RUN_FIELDS`); a query
touches only numpy arrays and the rows of the page it answers, so a 100,000-run batch pages as fast as a
5-run one once its table is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from lynx_common import names
from lynx_common.errors import ValidationError

# Fixed columns of every run; inputs are "in.<name>", outputs "out.<name>".
FIXED = ("run_id", "job_id", "seed", "status", "reason", "attempts", "seconds", "runner", "finished_at", "condition")
RUN_FIELDS = (*FIXED, "inputs", "outputs", "termination")  # termination: {"condition": "variable op value"} or None
PAGE_SIZES = (10, 25, 50, 100, 250)
FAILED = "Failed"
FINISHED = ("Completed", "Failed", "Cancelled")


@dataclass
class Column:
    """One column: numbers as float64 (NaN where missing), anything else as strings ("" where missing)."""

    key: str
    numeric: bool
    values: np.ndarray


@dataclass
class Query:
    """A runs-table request: sort key and order, filters, page (1-based) and size."""

    sort: str = "run_id"
    descending: bool = False
    statuses: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    page: int = 1
    size: int = 50


@dataclass
class Page:
    rows: list[dict]
    total: int  # rows matching the filters
    page: int
    pages: int


class LazyRows(Sequence):
    """Rows of a Records, each made into a dict only when read (a page shows 50 of 100,000)."""

    def __init__(self, rec, inputs: list[str]) -> None:
        self.rec = rec
        self.inputs = inputs
        self.status = np.array(["", *names.JOB_STATUS.names], dtype=object)
        self.reason = np.array(["", *names.TERMINATION_REASON.names], dtype=object)

    def __len__(self) -> int:
        return len(self.rec)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        rec, i = self.rec, int(i)
        seconds = float(rec.seconds[i])
        finished_at = float(rec.finished_at[i])
        inputs = {}
        for name in self.inputs:
            if name in rec.numeric_inputs:
                v = float(rec.numeric_inputs[name][i])
                inputs[name] = None if math.isnan(v) else v
            else:
                inputs[name] = rec.categorical_inputs[name][i]
        outputs: dict = {}
        for name, column in rec.numbers.items():
            if rec.present[name][i]:
                v = float(column[i])
                outputs[name] = bool(v) if name in rec.booleans else v
        for name, column in rec.texts.items():
            if name not in outputs and column[i] is not None:
                outputs[name] = column[i]
        condition = rec.condition[i]
        return {
            "run_id": int(rec.run_id[i]), "job_id": rec.job_id[i], "seed": int(rec.seed[i]),
            "status": self.status[int(rec.status[i])] if 0 <= rec.status[i] < len(self.status) else "",
            "reason": self.reason[int(rec.reason[i])] if 0 <= rec.reason[i] < len(self.reason) else "",
            "attempts": int(rec.attempts[i]), "seconds": seconds or None, "runner": rec.runner[i],
            "inputs": inputs, "outputs": outputs,
            "termination": {"condition": condition} if condition else None, "condition": condition,
            "finished_at": None if math.isnan(finished_at) else finished_at,
        }


class RunsTable:
    """Columns of a batch's runs; rows (dicts) made for rendering a page."""

    def __init__(self, rows: list[dict], columns: dict[str, Column], inputs: list[str], outputs: list[str]) -> None:
        self.rows = rows
        self.columns = columns
        self.inputs = inputs
        self.outputs = outputs

    @classmethod
    def build(cls, runs: Iterable[Mapping]) -> RunsTable:
        rows = list(runs)
        if any(rows[i]["run_id"] > rows[i + 1]["run_id"] for i in range(len(rows) - 1)):
            rows.sort(key=lambda r: r["run_id"])
        inputs: dict[str, None] = {}
        outputs: dict[str, None] = {}
        for r in rows:
            inputs.update(dict.fromkeys(r.get("inputs", ())))
            outputs.update(dict.fromkeys(r.get("outputs", ())))
        columns: dict[str, Column] = {}
        n = len(rows)

        def add(key: str, values: list) -> None:
            try:  # numbers and booleans (None is missing); a string anywhere makes it a text column
                if any(isinstance(v, str) for v in values):
                    raise TypeError
                arr = np.fromiter((math.nan if v is None else v for v in values), dtype=np.float64, count=n)
                columns[key] = Column(key, True, arr)
            except (TypeError, ValueError):
                columns[key] = Column(key, False, np.array(["" if v is None else str(v) for v in values], dtype=object))

        for key in FIXED:
            add(key, [r.get(key) or "" for r in rows] if key == "condition" else [r.get(key) for r in rows])
        for name in inputs:
            add(f"in.{name}", [r["inputs"].get(name) for r in rows])
        for name in outputs:
            add(f"out.{name}", [r["outputs"].get(name) for r in rows])
        return cls(rows, columns, list(inputs), list(outputs))

    @classmethod
    def from_records(cls, rec) -> RunsTable:
        """The table over lynx_results' columns of the batch (lynx_results.records.Records): no copy per value."""
        inputs = list(rec.inputs.all) or [*rec.numeric_inputs, *rec.categorical_inputs]
        rows = LazyRows(rec, inputs)
        f = np.float64
        columns = {
            "run_id": Column("run_id", True, rec.run_id.astype(f)),
            "job_id": Column("job_id", False, rec.job_id),
            "seed": Column("seed", True, rec.seed.astype(f)),
            "status": Column("status", False, rows.status[np.clip(rec.status.astype(int), 0, len(rows.status) - 1)]),
            "reason": Column("reason", False, rows.reason[np.clip(rec.reason.astype(int), 0, len(rows.reason) - 1)]),
            "attempts": Column("attempts", True, rec.attempts.astype(f)),
            "seconds": Column("seconds", True, np.where(rec.seconds > 0, rec.seconds, np.nan)),
            "runner": Column("runner", False, rec.runner),
            "finished_at": Column("finished_at", True, rec.finished_at),
            "condition": Column("condition", False, rec.condition),
        }
        for name in inputs:
            if name in rec.numeric_inputs:
                columns[f"in.{name}"] = Column(f"in.{name}", True, rec.numeric_inputs[name])
            elif name in rec.categorical_inputs:
                column = rec.categorical_inputs[name]
                columns[f"in.{name}"] = Column(f"in.{name}", False,
                                               np.array(["" if v is None else str(v) for v in column], dtype=object))
        outputs = [*rec.numbers, *(t for t in rec.texts if t not in rec.numbers)]
        for name in outputs:
            if name in rec.numbers:
                columns[f"out.{name}"] = Column(f"out.{name}", True, rec.numbers[name])
            else:
                column = rec.texts[name]
                columns[f"out.{name}"] = Column(f"out.{name}", False,
                                                np.array(["" if v is None else v for v in column], dtype=object))
        return cls(rows, columns, inputs, outputs)

    def __len__(self) -> int:
        return len(self.rows)

    def numeric_keys(self) -> list[str]:
        return [k for k, c in self.columns.items() if c.numeric]

    def mask(self, q: Query) -> np.ndarray:
        keep = np.ones(len(self.rows), dtype=bool)
        if q.statuses:
            keep &= np.isin(self.columns["status"].values, list(q.statuses))
        if q.reasons:
            keep &= np.isin(self.columns["reason"].values, list(q.reasons))
        for key, (lo, hi) in q.ranges.items():
            col = self.columns.get(key)
            if col is None or not col.numeric:
                raise ValidationError(f"min.{key}", f"is not a numeric column of this batch: {key!r}")
            with np.errstate(invalid="ignore"):
                if lo is not None:
                    keep &= col.values >= lo
                if hi is not None:
                    keep &= col.values <= hi
        return keep

    def query(self, q: Query) -> Page:
        col = self.columns.get(q.sort)
        if col is None:
            raise ValidationError("sort", f"is not a column of this batch: {q.sort!r}")
        if q.size not in PAGE_SIZES:
            raise ValidationError("size", f"must be one of {', '.join(map(str, PAGE_SIZES))}, got {q.size}")
        index = np.flatnonzero(self.mask(q))
        keys = col.values[index]
        if col.numeric:  # missing values last in either order
            missing = np.isnan(keys)
            order = np.lexsort((-keys if q.descending else keys, missing))
        else:
            order = np.argsort(keys.astype(str), kind="stable")
            if q.descending:
                order = order[::-1]
        total = len(index)
        pages = max(1, math.ceil(total / q.size))
        page = min(max(1, q.page), pages)
        chosen = index[order[(page - 1) * q.size: page * q.size]]
        return Page([self.rows[i] for i in chosen], total, page, pages)

    def output_values(self, name: str) -> np.ndarray:
        col = self.columns.get(f"out.{name}")
        if col is None or not col.numeric:
            raise ValidationError("output", f"is not a numeric output of this batch: {name!r}")
        return col.values

    def histogram(self, name: str, bins: int = 30) -> dict:
        """Counts of an output over the runs that produced it, split by final status."""
        values = self.output_values(name)
        ok = ~np.isnan(values)
        if not ok.any():
            return {"output": name, "edges": [], "succeeded": [], "failed": [], "n": 0}
        edges = np.histogram_bin_edges(values[ok], bins=min(bins, max(1, int(ok.sum()))))
        failed = self.columns["status"].values == FAILED
        good, _ = np.histogram(values[ok & ~failed], bins=edges)
        bad, _ = np.histogram(values[ok & failed], bins=edges)
        return {"output": name, "edges": edges.tolist(), "succeeded": good.tolist(), "failed": bad.tolist(),
                "n": int(ok.sum())}

    def convergence(self, name: str | None, points: int = 400) -> dict:
        """Running mean of an output and running failure probability (Wilson 95 %) by finished-run count.

        Finished runs count in the order they finished (run order where the time is unknown), as the
        summary's convergence does; the curves are downsampled to about `points`."""
        status = self.columns["status"].values
        finished = np.flatnonzero(np.isin(status, FINISHED))
        finished = finished[np.argsort(self.columns["finished_at"].values[finished], kind="stable")]
        n = np.arange(1, len(finished) + 1, dtype=np.float64)
        fails = np.cumsum(status[finished] == FAILED).astype(np.float64)
        p, lo, hi = wilson(fails, n)
        out: dict = {"n": n.tolist(), "p": p.tolist(), "p_lo": lo.tolist(), "p_hi": hi.tolist(), "output": name}
        if name:
            values = self.output_values(name)[finished]
            have = ~np.isnan(values)
            sums = np.cumsum(np.where(have, values, 0.0))
            counts = np.cumsum(have)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["mean"] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).tolist()
        step = max(1, len(n) // points)
        keep = slice(None, None, step)
        for key in ("n", "p", "p_lo", "p_hi", "mean"):
            if key in out:
                series = out[key]
                last = series[-1:] if series and (len(series) - 1) % step else []
                out[key] = [None if isinstance(x, float) and math.isnan(x) else x for x in series[keep] + last]
        return out


def wilson(k: np.ndarray, n: np.ndarray, z: float = 1.959963984540054) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate and Wilson score interval of k successes in n trials (elementwise)."""
    if len(n) == 0:
        return n, n, n
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def parse_query(params: Mapping[str, str], getall) -> Query:
    """A Query from URL parameters: sort, order, page, size, status (repeatable), reason (repeatable),
    min.<column> and max.<column>. Bad values raise ValidationError naming the parameter."""
    q = Query(sort=params.get("sort", "run_id") or "run_id", descending=params.get("order", "asc") == "desc")
    if params.get("order", "asc") not in ("asc", "desc"):
        raise ValidationError("order", f"must be asc or desc, got {params.get('order')!r}")
    for name in ("page", "size"):
        if params.get(name):
            try:
                setattr(q, name, int(params[name]))
            except ValueError:
                raise ValidationError(name, f"must be a whole number, got {params[name]!r}") from None
    q.statuses = tuple(s for s in getall("status") if s)
    q.reasons = tuple(s for s in getall("reason") if s)
    for param, raw in params.items():
        bound, _, key = param.partition(".")
        if bound not in ("min", "max") or not key or raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            raise ValidationError(param, f"must be a number, got {raw!r}") from None
        lo, hi = q.ranges.get(key, (None, None))
        q.ranges[key] = (value, hi) if bound == "min" else (lo, value)
    return q

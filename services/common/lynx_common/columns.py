"""Typed sample columns (lynx.common.v1.RunColumns) to Python values and back: one decoder for
the scheduler, the tests and the benches, one encoder of a value for the sampler and the scheduler."""

from __future__ import annotations

from lynx.common.v1 import parameters_pb2 as ppb


def value_of(v: ppb.ParameterValue) -> object:
    """A ParameterValue as Python: float, int, str or bool (None when unset)."""
    kind = v.WhichOneof("kind")
    return getattr(v, kind) if kind else None


def parameter_value(x: object) -> ppb.ParameterValue:
    """A Python value as a typed ParameterValue (bool before int: True is an int in Python)."""
    if isinstance(x, bool):
        return ppb.ParameterValue(flag=x)
    if isinstance(x, int):
        return ppb.ParameterValue(integer=x)
    if isinstance(x, str):
        return ppb.ParameterValue(text=x)
    return ppb.ParameterValue(number=float(x))


def column_values(column: ppb.ParameterColumn) -> list:
    """A column's values in run order, typed as a run config carries them (ints stay ints,
    strings stay strings). A choice index out of range is a ValueError naming the parameter."""
    kind = column.WhichOneof("values")
    if kind == "choices":
        levels = [value_of(v) for v in column.choices.levels]
        try:
            return [levels[i] for i in column.choices.indices]
        except IndexError:
            raise ValueError(f"parameter {column.name!r}: choice index out of range") from None
    if kind is None:
        return []
    return list(getattr(column, kind).values)


def rows(runs: ppb.RunColumns) -> list[tuple[int, int, dict]]:
    """(run_id, seed, {name: value} in declared order) of every run of a chunk."""
    names = [c.name for c in runs.parameters]
    values = [column_values(c) for c in runs.parameters]
    return [
        (run_id, seed, dict(zip(names, point, strict=True)))
        for run_id, seed, point in zip(runs.run_ids, runs.seeds, zip(*values, strict=True), strict=True)
    ]

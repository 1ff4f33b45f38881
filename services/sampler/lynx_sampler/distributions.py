"""Validated distributions: each maps points of the unit interval to values by its inverse CDF.

Every parameter works on a numeric "code" column: the value itself for numeric distributions,
the index into `values` for `choice`. `to_python` turns codes into what a run config carries.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lynx_common.distributions import DISTRIBUTIONS, NO_LEVELS
from lynx_common.errors import ValidationError

# Unit-cube points are clipped into [U_MIN, U_MAX] so no inverse CDF returns +-inf; the clip
# moves only points within 2**-53 of 0 or 1 and never out of their stratum.
U_MIN = 2.0**-60
U_MAX = 1.0 - 2.0**-53
# Distribution fields arrive as doubles (the batch config's proto fields and JSON numbers);
# beyond 2**53 whole numbers stop being exact.
MAX_EXACT_INT = 2**53

# The fields each type takes, required and optional: the one table (lynx_common.distributions).
FIELDS: dict[str, tuple[str, ...]] = {kind: (*req, *opt) for kind, (req, opt) in DISTRIBUTIONS.items()}
# `levels` (grid only) applies to the types whose grid points are not fixed by the spec itself.
LEVELS_TYPES = tuple(t for t in FIELDS if t not in NO_LEVELS)
TYPES = tuple(FIELDS)


@dataclass(frozen=True)
class Parameter:
    """One validated dispersed parameter. Subclasses define the mapping from the unit interval."""

    name: str
    kind: str
    levels: int | None

    @property
    def column(self) -> str:
        """How the values travel: "numbers" (doubles), "integers", "texts" or "choices"."""
        return "numbers"

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Codes for points of [0, 1) through the inverse CDF (monotone, so strata are kept)."""
        raise NotImplementedError

    def to_python(self, codes: np.ndarray) -> list:
        """The values a run config carries for these codes."""
        raise NotImplementedError

    def grid_codes(self) -> np.ndarray:
        """The codes of this parameter's levels in a full-factorial grid."""
        raise NotImplementedError

    def rank_key(self, codes: np.ndarray) -> np.ndarray | None:
        """Numbers that order the codes by value (for rank correlation); None if unordered."""
        return codes

    def midpoints(self) -> np.ndarray:
        """(i + 0.5) / levels for each grid level."""
        return (np.arange(self.levels) + 0.5) / self.levels


@dataclass(frozen=True)
class Continuous(Parameter):
    """A continuous distribution given by a frozen scipy distribution."""

    dist: object = None

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(self.dist.ppf(np.clip(u, U_MIN, U_MAX)), dtype=float)

    def to_python(self, codes: np.ndarray) -> list:
        return codes.tolist()

    def grid_codes(self) -> np.ndarray:
        return self.from_unit(self.midpoints())


@dataclass(frozen=True)
class IntegerUniform(Parameter):
    """Whole numbers lo..hi inclusive, equally likely."""

    lo: int = 0
    hi: int = 0

    @property
    def count(self) -> int:
        """How many integers the parameter can take."""
        return self.hi - self.lo + 1

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        index = np.minimum(np.floor(np.clip(u, 0.0, U_MAX) * self.count), self.count - 1)
        return self.lo + index

    @property
    def column(self) -> str:
        return "integers"

    def to_python(self, codes: np.ndarray) -> list:
        return codes.astype(np.int64).tolist()

    def grid_codes(self) -> np.ndarray:
        if self.levels is None:
            return np.arange(self.lo, self.hi + 1, dtype=float)
        return self.from_unit(self.midpoints())


@dataclass(frozen=True)
class Choice(Parameter):
    """One of `values` (numbers or strings), equally likely or by relative `weights`.

    Types: the values arrive as google.protobuf.Value (or JSON numbers), which has no integer
    type, so when every number among the values is whole (and within +-2**53) those numbers are
    integers; otherwise they are real numbers. Strings stay strings."""

    values: tuple = ()
    # Upper edge of each value's interval of [0, 1); None means equal weights.
    edges: tuple[float, ...] | None = None

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        u = np.clip(u, 0.0, U_MAX)
        k = len(self.values)
        if self.edges is None:
            return np.minimum(np.floor(u * k), k - 1)
        # searchsorted on the inner edges: value i covers [edges[i-1], edges[i])
        return np.searchsorted(np.asarray(self.edges[:-1]), u, side="right").astype(float)

    @functools.cached_property
    def typed_values(self) -> tuple:
        """The values as a run config carries them: str, int (whole numbers) or float."""
        numbers = [v for v in self.values if not isinstance(v, str)]
        whole = all(float(v).is_integer() and abs(v) <= MAX_EXACT_INT for v in numbers)
        cast = int if whole else float
        return tuple(v if isinstance(v, str) else cast(v) for v in self.values)

    @property
    def column(self) -> str:
        """The column type: texts when every value is a string, integers or numbers when every
        value is a number, choices (levels and indices) for a mix."""
        kinds = {type(v) for v in self.typed_values}
        if kinds == {str}:
            return "texts"
        if kinds == {int}:
            return "integers"
        if kinds == {float}:
            return "numbers"
        return "choices"

    def to_python(self, codes: np.ndarray) -> list:
        values = self.typed_values
        return [values[i] for i in codes.astype(np.int64).tolist()]

    def grid_codes(self) -> np.ndarray:
        return np.arange(len(self.values), dtype=float)

    @property
    def numeric(self) -> bool:
        """Whether every value is a number (so values have an order)."""
        return all(not isinstance(v, str) for v in self.values)

    def rank_key(self, codes: np.ndarray) -> np.ndarray | None:
        if not self.numeric:
            return None
        return np.asarray(self.values, dtype=float)[codes.astype(np.int64)]


@dataclass(frozen=True)
class Constant(Parameter):
    """A fixed value."""

    value: float = 0.0

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        return np.full(np.shape(u), self.value, dtype=float)

    def to_python(self, codes: np.ndarray) -> list:
        return codes.tolist()

    def grid_codes(self) -> np.ndarray:
        return np.array([self.value])

    def rank_key(self, codes: np.ndarray) -> np.ndarray | None:
        return None


class _Fields:
    """Typed access to one `distribution` mapping, raising errors that name the field."""

    def __init__(self, spec: dict, path: str) -> None:
        self.spec = spec
        self.path = path

    def error(self, field: str, problem: str) -> ValidationError:
        """A ValidationError on `<path>.<field>`."""
        return ValidationError(f"{self.path}.{field}", problem)

    def number(self, field: str, default: float | None = None) -> float:
        """A finite number; `default` when absent, required when no default is given."""
        value = self.spec.get(field)
        if value is None:
            if default is None:
                raise self.error(field, "is required")
            return default
        if not is_number(value) or not math.isfinite(value):
            raise self.error(field, f"must be a finite number, got {value!r}")
        return float(value)

    def positive(self, field: str) -> float:
        """A finite number greater than zero."""
        value = self.number(field)
        if not value > 0:
            raise self.error(field, f"must be positive, got {value!r}")
        return value

    def bounds(self, lo_default: float | None = None, hi_default: float | None = None) -> tuple[float, float]:
        """min and max with max > min."""
        lo, hi = self.number("min", lo_default), self.number("max", hi_default)
        if not hi > lo:
            raise self.error("max", f"must be greater than min ({hi!r} <= {lo!r})")
        return lo, hi

    def whole(self, field: str) -> int:
        """A whole number small enough to stay exact as a double."""
        value = self.number(field)
        if not value.is_integer():
            raise self.error(field, f"must be a whole number, got {value!r}")
        if abs(value) > MAX_EXACT_INT:
            raise self.error(field, f"must lie within +-2**53 to stay exact, got {value!r}")
        return int(value)

    def levels(self, kind: str) -> int | None:
        """The grid levels, if given: a whole number of at least 1."""
        value = self.spec.get("levels")
        if value is None:
            return None
        if kind not in LEVELS_TYPES:
            raise self.error("levels", f"does not apply to {kind} (its grid levels are its values)")
        if not is_number(value) or not float(value).is_integer():
            raise self.error("levels", f"must be a whole number, got {value!r}")
        if value < 1:
            raise self.error("levels", f"must be at least 1, got {value!r}")
        return int(value)


def is_number(value: object) -> bool:
    """int or float, not bool (YAML `true` is not a number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _checked(name: str, kind: str, levels: int | None, dist: object, fields: _Fields, blame: str) -> Continuous:
    """A Continuous parameter whose inverse CDF is finite over the whole clipped unit interval."""
    with np.errstate(all="ignore"):
        ends = np.asarray(dist.ppf([U_MIN, U_MAX]), dtype=float)
    if not np.all(np.isfinite(ends)):
        raise fields.error(blame, "gives non-finite values (overflow); the range of values must stay below 1.8e308")
    return Continuous(name, kind, levels, dist)


def _continuous(name: str, kind: str, levels: int | None, f: _Fields) -> Continuous:
    """Build one of the continuous families (after the field names were checked)."""
    if kind == "uniform":
        lo, hi = f.bounds()
        return _checked(name, kind, levels, stats.uniform(loc=lo, scale=hi - lo), f, "max")
    if kind == "normal":
        mean, std = f.number("mean"), f.positive("std")
        return _checked(name, kind, levels, stats.norm(loc=mean, scale=std), f, "std")
    if kind == "truncated_normal":
        mean, std = f.number("mean"), f.positive("std")
        lo, hi = f.bounds()
        dist = stats.truncnorm(a=(lo - mean) / std, b=(hi - mean) / std, loc=mean, scale=std)
        return _checked(name, kind, levels, dist, f, "std")
    if kind == "lognormal":
        mu, sigma = f.number("mu"), f.positive("sigma")
        if mu > 700:
            raise f.error("mu", f"must be at most 700 (exp(mu) overflows), got {mu!r}")
        return _checked(name, kind, levels, stats.lognorm(s=sigma, scale=math.exp(mu)), f, "sigma")
    if kind == "triangular":
        lo, mode, hi = f.number("min"), f.number("mode"), f.number("max")
        if not hi > lo:
            raise f.error("max", f"must be greater than min ({hi!r} <= {lo!r})")
        if not lo <= mode <= hi:
            raise f.error("mode", f"must lie within [min, max] = [{lo!r}, {hi!r}], got {mode!r}")
        return _checked(name, kind, levels, stats.triang(c=(mode - lo) / (hi - lo), loc=lo, scale=hi - lo), f, "max")
    if kind == "beta":
        a, b = f.positive("alpha"), f.positive("beta")
        lo, hi = f.bounds(0.0, 1.0)
        return _checked(name, kind, levels, stats.beta(a, b, loc=lo, scale=hi - lo), f, "max")
    # exponential
    rate, shift = f.positive("rate"), f.number("min", 0.0)
    return _checked(name, kind, levels, stats.expon(loc=shift, scale=1.0 / rate), f, "rate")


def _integer_uniform(name: str, levels: int | None, f: _Fields) -> IntegerUniform:
    lo, hi = f.whole("min"), f.whole("max")
    if hi < lo:
        raise f.error("max", f"must be at least min ({hi!r} < {lo!r})")
    if levels is not None and levels > hi - lo + 1:
        raise f.error("levels", f"must be at most the {hi - lo + 1} integers in [min, max], got {levels}")
    return IntegerUniform(name, "integer_uniform", levels, lo, hi)


def _choice_values(f: _Fields) -> tuple:
    values = f.spec.get("values")
    if not isinstance(values, (list, tuple)) or not values:
        raise f.error("values", "is required: a non-empty list of numbers or strings")
    seen: set = set()
    for i, v in enumerate(values):
        if isinstance(v, str):
            key = ("s", v)
        elif is_number(v) and math.isfinite(v):
            key = ("n", float(v))
        else:
            raise f.error("values", f"item {i} must be a finite number or a string, got {v!r}")
        if key in seen:
            raise f.error("values", f"item {i} repeats {v!r}; values must be distinct")
        seen.add(key)
    return tuple(values)


def _choice_edges(f: _Fields, count: int) -> tuple[float, ...] | None:
    weights = f.spec.get("weights")
    if weights is None or (isinstance(weights, (list, tuple)) and not weights):
        return None
    if not isinstance(weights, (list, tuple)) or len(weights) != count:
        got = len(weights) if isinstance(weights, (list, tuple)) else weights
        raise f.error("weights", f"must have one weight per value ({count}), got {got!r}")
    for i, w in enumerate(weights):
        if not is_number(w) or not math.isfinite(w) or w < 0:
            raise f.error("weights", f"item {i} must be a non-negative finite number, got {w!r}")
    w = np.asarray(weights, dtype=float)
    if not w.sum() > 0:
        raise f.error("weights", "must have a positive sum")
    edges = np.cumsum(w) / w.sum()
    edges[int(np.flatnonzero(w > 0)[-1]) :] = 1.0  # trailing zero weights are never drawn
    return tuple(edges.tolist())


def build_parameter(name: str, spec: dict, path: str) -> Parameter:
    """Validate one `distribution` mapping and return the parameter it describes."""
    if not isinstance(spec, dict):
        raise ValidationError(path, f"must be a mapping with a type, got {spec!r}")
    f = _Fields(spec, path)
    kind = spec.get("type")
    if not kind:
        raise f.error("type", f"is required (one of {', '.join(TYPES)})")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise f.error("type", f"unknown distribution {kind!r} (expected one of {', '.join(TYPES)})")
    allowed = {"type", "levels", *FIELDS[kind]}
    for field in spec:
        if field not in allowed:
            raise f.error(field, f"does not apply to {kind} (its fields: {', '.join(FIELDS[kind])})")
    levels = f.levels(kind)
    if kind == "constant":
        return Constant(name, kind, None, f.number("value"))
    if kind == "integer_uniform":
        return _integer_uniform(name, levels, f)
    if kind == "choice":
        values = _choice_values(f)
        return Choice(name, kind, None, values, _choice_edges(f, len(values)))
    return _continuous(name, kind, levels, f)


def build_parameters(dispersions: list[tuple[str, dict]]) -> list[Parameter]:
    """Validate every dispersion (name, distribution mapping), in declared order."""
    if not dispersions:
        raise ValidationError("dispersions", "must name at least one parameter")
    seen: set[str] = set()
    params = []
    for name, spec in dispersions:
        if not name or not name.strip():
            raise ValidationError("dispersions", "parameter names must not be empty")
        if name in seen:
            raise ValidationError(f"dispersions.{name}", "is declared twice")
        seen.add(name)
        params.append(build_parameter(name, spec, f"dispersions.{name}.distribution"))
    return params

"""Distributions and sampling methods, with no gRPC in sight (what unit tests exercise)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from lynx_common.errors import ValidationError
from scipy import stats
from scipy.stats import qmc

METHODS = ("latin_hypercube", "random")
DEFAULT_METHOD = "latin_hypercube"
MAX_RUNS = 1_000_000


@dataclass(frozen=True)
class Parameter:
    """One validated dispersed parameter: a name and a frozen distribution."""

    name: str
    kind: str
    dist: object | None  # a frozen scipy distribution, or None for a constant
    value: float = 0.0

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map points of (0, 1) through the inverse CDF, keeping LHS strata intact."""
        if self.dist is None:
            return np.full_like(u, self.value)
        return self.dist.ppf(u)


def _number(spec: dict, field: str, path: str) -> float:
    value = spec.get(field)
    if value is None:
        raise ValidationError(f"{path}.{field}", "is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{path}.{field}", f"must be a finite number, got {value!r}")
    return float(value)


def build_parameter(name: str, spec: dict, path: str) -> Parameter:
    """Validate one `distribution` mapping and return the parameter it describes."""
    kind = spec.get("type")
    if not kind:
        raise ValidationError(f"{path}.type", "is required (uniform, normal or constant)")
    if kind == "uniform":
        lo, hi = _number(spec, "min", path), _number(spec, "max", path)
        if not hi > lo:
            raise ValidationError(f"{path}.max", f"must be greater than min ({hi!r} <= {lo!r})")
        return Parameter(name, kind, stats.uniform(loc=lo, scale=hi - lo))
    if kind == "normal":
        mean, std = _number(spec, "mean", path), _number(spec, "std", path)
        if not std > 0:
            raise ValidationError(f"{path}.std", f"must be positive, got {std!r}")
        return Parameter(name, kind, stats.norm(loc=mean, scale=std))
    if kind == "constant":
        return Parameter(name, kind, None, _number(spec, "value", path))
    raise ValidationError(
        f"{path}.type", f"unknown distribution {kind!r} (expected uniform, normal or constant)"
    )


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


def validate_method(method: str) -> str:
    """Return the sampling method, defaulted, or raise naming the field."""
    method = method or DEFAULT_METHOD
    if method not in METHODS:
        raise ValidationError(
            "monte_carlo.sampling_method",
            f"unknown method {method!r} (expected one of {', '.join(METHODS)})",
        )
    return method


def validate_runs(runs: int) -> int:
    """Return the run count or raise naming the field."""
    if runs < 1:
        raise ValidationError("monte_carlo.runs", f"must be at least 1, got {runs}")
    if runs > MAX_RUNS:
        raise ValidationError("monte_carlo.runs", f"must be at most {MAX_RUNS}, got {runs}")
    return runs


def unit_points(method: str, runs: int, dims: int, seed: int) -> np.ndarray:
    """Points in the open unit hypercube, shape (runs, dims), fully determined by the seed."""
    rng = np.random.default_rng(seed)
    if method == "latin_hypercube":
        return qmc.LatinHypercube(d=dims, rng=rng).random(runs)
    return rng.random((runs, dims))


def sample(params: list[Parameter], method: str, runs: int, seed: int) -> np.ndarray:
    """Sample `runs` points of `params`: shape (runs, len(params)), columns in declared order."""
    method = validate_method(method)
    runs = validate_runs(runs)
    if seed < 0:
        raise ValidationError("monte_carlo.seed", f"must be non-negative, got {seed}")
    u = unit_points(method, runs, len(params), seed)
    return np.column_stack([p.from_unit(u[:, i]) for i, p in enumerate(params)])

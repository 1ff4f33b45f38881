"""Distributions and sampling methods, with no gRPC in sight (what unit tests exercise).

`plan` validates a whole request (every error is a ValidationError naming the field) and
`generate` turns the plan into a `Sample`; nothing after `plan` can fail on user input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lynx_common import limits
from lynx_common.errors import ValidationError
from lynx_sampler import correlation as corr_mod
from lynx_sampler import methods
from lynx_sampler.distributions import IntegerUniform, Parameter, build_parameter, build_parameters

__all__ = ["Parameter", "Plan", "Sample", "build_parameter", "build_parameters", "generate", "plan", "sample"]

METHODS = ("latin_hypercube", "random", "sobol", "halton", "grid")
DEFAULT_METHOD = "latin_hypercube"
OPTIMIZATIONS = ("random-cd",)
MAX_RUNS = limits.value("batch_runs")  # LYNX_LIMIT_BATCH_RUNS
MAX_GRID_POINTS = 1_000_000
# random-cd grows with the square of the points: 1,000 points of 20 parameters took 6-15 s and
# 2,000 took 33 s on a shared 2-core machine; the scheduler waits 120 s for a sample.
MAX_OPTIMIZED_RUNS = 1_000
# scipy's Sobol' direction numbers cover this many dimensions.
MAX_SOBOL_DIMS = 21_201


@dataclass(frozen=True)
class Plan:
    """A validated request: everything `generate` needs, and the warnings for the answer."""

    params: list[Parameter]
    method: str
    runs: int
    seed: int
    optimization: str = ""
    correlation: corr_mod.Correlation | None = None
    existing_runs: int = 0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sample:
    """Sampled points: `codes[i, j]` is the code of parameter j in run `first_run_id + i`
    (the value itself for numeric distributions, the index into `values` for choice)."""

    params: list[Parameter]
    codes: np.ndarray
    first_run_id: int = 0
    warnings: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def names(self) -> list[str]:
        """Parameter names in declared order."""
        return [p.name for p in self.params]

    @property
    def run_ids(self) -> list[int]:
        """The run id of each point."""
        return list(range(self.first_run_id, self.first_run_id + len(self)))

    def column(self, index: int) -> list:
        """Values of parameter `index` as a run config carries them (int for integer_uniform,
        the original value for choice, float otherwise)."""
        return self.params[index].to_python(self.codes[:, index])

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict]:
        """Points start..stop (positions in this sample) as {name: value} dicts."""
        part = self.codes[start:stop]
        columns = [p.to_python(part[:, j]) for j, p in enumerate(self.params)]
        names = self.names
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def validate_method(method: str) -> str:
    """Return the sampling method, defaulted, or raise naming the field."""
    method = method or DEFAULT_METHOD
    if method not in METHODS:
        raise ValidationError(
            "monte_carlo.sampling_method", f"unknown method {method!r} (expected one of {', '.join(METHODS)})"
        )
    return method


def validate_runs(runs: int, existing_runs: int = 0) -> int:
    """Return the run count or raise naming the field (`runs` when extending a batch)."""
    name = "runs" if existing_runs else "monte_carlo.runs"
    if runs < 1:
        raise ValidationError(name, f"must be at least 1, got {runs}")
    if existing_runs + runs > MAX_RUNS:
        total = f"{existing_runs} existing + {runs}" if existing_runs else f"{runs}"
        raise ValidationError(name, f"must be at most {MAX_RUNS} in total, got {total}")
    return runs


def _validate_optimization(optimization: str, method: str, runs: int, existing_runs: int) -> str:
    if not optimization:
        return ""
    if optimization not in OPTIMIZATIONS:
        raise ValidationError(
            "monte_carlo.optimization", f"unknown optimization {optimization!r} (expected empty or random-cd)"
        )
    if method != "latin_hypercube":
        raise ValidationError("monte_carlo.optimization", f"applies only to latin_hypercube, not {method}")
    size = existing_runs or runs  # an extension re-optimises only the original points
    if size > MAX_OPTIMIZED_RUNS:
        raise ValidationError(
            "monte_carlo.optimization",
            f"random-cd is limited to {MAX_OPTIMIZED_RUNS} runs (its cost grows with the square of the runs), "
            f"got {size}",
        )
    return optimization


def _check_lhs_extension(existing_runs: int, runs: int) -> None:
    total = existing_runs + runs
    if total % existing_runs:
        allowed = ", ".join(str(existing_runs * m) for m in range(2, 5))
        raise ValidationError(
            "runs",
            f"must make the total a multiple of the {existing_runs} existing runs for a latin hypercube "
            f"extension (totals {allowed}, ...; that is runs = {existing_runs}, {2 * existing_runs}, ...), "
            f"got {existing_runs} + {runs} = {total}",
        )


def _grid_size(params: list[Parameter]) -> tuple[int, list[int]]:
    """Points of the full-factorial grid and levels per parameter, checking levels and the cap."""
    counts: list[int] = []
    total = 1
    for p in params:
        path = f"dispersions.{p.name}.distribution.levels"
        if p.kind in ("choice", "constant"):
            count = len(p.grid_codes())
        elif isinstance(p, IntegerUniform) and p.levels is None:
            count = p.count  # every integer; not materialised before the cap is checked
        elif p.levels is None:
            raise ValidationError(path, f"is required for a {p.kind} parameter in a grid (how many points, >= 1)")
        else:
            count = p.levels
        total *= count
        counts.append(count)
        if total > MAX_GRID_POINTS:
            own = f"{count} levels" if p.levels is not None or p.kind == "choice" else f"all {count} integers"
            raise ValidationError(
                path,
                f"({own} of {p.name}) makes the grid larger than {MAX_GRID_POINTS} points "
                "(the product of every parameter's levels); use fewer levels",
            )
    return total, counts


def _plan_grid(params, runs, seed, optimization, correlation, existing_runs) -> Plan:
    if existing_runs:
        raise ValidationError("existing_runs", "must be 0: a grid cannot be extended (its points are all its levels)")
    if optimization:
        raise ValidationError("monte_carlo.optimization", "applies only to latin_hypercube, not grid")
    if not corr_mod.is_empty(correlation):
        raise ValidationError("monte_carlo.correlation", "cannot be imposed on a grid (its points are fixed)")
    if runs < 0:
        raise ValidationError("monte_carlo.runs", f"must not be negative, got {runs}")
    total, counts = _grid_size(params)
    warnings: tuple[str, ...] = ()
    if runs and runs != total:
        product = " x ".join(str(c) for c in counts)
        warnings = (f"grid: runs ({runs}) is ignored; the grid has {total} points ({product} levels)",)
    return Plan(params, "grid", total, seed, warnings=warnings)


def _sobol_warning(existing_runs: int, runs: int) -> tuple[str, ...]:
    total = existing_runs + runs
    if total & (total - 1) == 0:
        return ()
    upper = 1 << total.bit_length()
    lower = upper >> 1
    what = f"{existing_runs} existing + {runs} new = {total} runs" if existing_runs else f"{total} runs"
    return (
        f"sobol: {what} is not a power of two; balance properties hold only at powers of two "
        f"({lower} or {upper})",
    )


def plan(
    dispersions: list[tuple[str, dict]],
    method: str = "",
    runs: int = 0,
    seed: int = 0,
    optimization: str = "",
    correlation: dict | None = None,
    existing_runs: int = 0,
) -> Plan:
    """Validate a whole request; raises ValidationError(field path, problem) on the first problem."""
    params = build_parameters(dispersions)
    method = validate_method(method)
    if seed < 0:
        raise ValidationError("monte_carlo.seed", f"must be non-negative, got {seed}")
    if existing_runs < 0:
        raise ValidationError("existing_runs", f"must not be negative, got {existing_runs}")
    if method == "grid":
        return _plan_grid(params, runs, seed, optimization, correlation, existing_runs)
    for p in params:
        if p.levels is not None:
            raise ValidationError(
                f"dispersions.{p.name}.distribution.levels", f"applies only to sampling_method grid, not {method}"
            )
    runs = validate_runs(runs, existing_runs)
    optimization = _validate_optimization(optimization, method, runs, existing_runs)
    corr = corr_mod.validate(correlation, params)
    if method == "latin_hypercube" and existing_runs:
        _check_lhs_extension(existing_runs, runs)
    if method == "sobol" and len(params) > MAX_SOBOL_DIMS:
        raise ValidationError("dispersions", f"sobol supports at most {MAX_SOBOL_DIMS} parameters")
    warnings = _sobol_warning(existing_runs, runs) if method == "sobol" else ()
    if corr is not None and method in ("sobol", "halton"):
        warnings += (
            f"{method}: the correlation reorders points within each parameter; each parameter keeps its "
            "one-dimensional balance but the joint low-discrepancy structure is lost",
        )
    return Plan(params, method, runs, seed, optimization, corr, existing_runs, warnings)


def _correlate(codes: np.ndarray, p: Plan) -> tuple[str, ...]:
    if p.correlation is None:
        return ()
    rng = methods.aux_rng(p.seed, methods.CORRELATION_KEY, p.existing_runs)
    if corr_mod.impose(codes, p.params, p.correlation, rng):
        return ()
    names = ", ".join(p.params[c].name for c in p.correlation.columns)
    return (f"correlation: {len(codes)} points are too few to correlate {names}; they were left uncorrelated",)


def generate(p: Plan) -> Sample:
    """The sample a validated plan describes; the same plan always gives the same sample."""
    if p.method == "grid":
        codes = methods.grid_codes([param.grid_codes() for param in p.params])
        return Sample(p.params, codes, 0, p.warnings)
    u = methods.unit_points(p.method, p.existing_runs, p.runs, len(p.params), p.seed, p.optimization)
    codes = np.empty_like(u)
    for j, param in enumerate(p.params):
        codes[:, j] = param.from_unit(u[:, j])
    warnings = p.warnings + _correlate(codes, p)
    return Sample(p.params, codes, p.existing_runs, warnings)


def sample(dispersions: list[tuple[str, dict]], method: str = "", runs: int = 0, seed: int = 0, **options) -> Sample:
    """`generate(plan(...))`: validate and sample in one call (options as for `plan`)."""
    return generate(plan(dispersions, method, runs, seed, **options))


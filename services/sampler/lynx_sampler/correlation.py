"""Rank correlation: validation of the user's matrix and the Iman-Conover reordering.

Iman-Conover only permutes the values within each column, so every marginal distribution,
and every one-point-per-stratum property of the column, is left exactly as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lynx_common.errors import ValidationError
from lynx_sampler.distributions import Choice, Constant, Parameter, is_number

PARAMETERS = "monte_carlo.correlation.parameters"
MATRIX = "monte_carlo.correlation.matrix"
SYMMETRY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Correlation:
    """A validated target: the columns it applies to and their Spearman matrix."""

    columns: tuple[int, ...]
    matrix: np.ndarray


def is_empty(spec: dict | None) -> bool:
    """Whether the correlation section is absent or has neither parameters nor a matrix."""
    return spec is None or (not spec.get("parameters") and not spec.get("matrix"))


def _columns(names: object, params: list[Parameter]) -> tuple[int, ...]:
    if not isinstance(names, (list, tuple)) or not names:
        raise ValidationError(PARAMETERS, "is required: the names of the correlated parameters")
    index = {p.name: i for i, p in enumerate(params)}
    columns: list[int] = []
    for name in names:
        if not isinstance(name, str) or name not in index:
            raise ValidationError(PARAMETERS, f"names {name!r}, which is not a dispersion")
        if index[name] in columns:
            raise ValidationError(PARAMETERS, f"names {name!r} twice")
        param = params[index[name]]
        if isinstance(param, Constant):
            raise ValidationError(PARAMETERS, f"names {name!r}, a constant, which has no rank order")
        if isinstance(param, Choice) and not param.numeric:
            raise ValidationError(PARAMETERS, f"names {name!r}, a choice with strings, which has no rank order")
        columns.append(index[name])
    if len(columns) < 2:
        raise ValidationError(PARAMETERS, f"must name at least 2 parameters, got {len(columns)}")
    return tuple(columns)


def _matrix(rows: object, size: int) -> np.ndarray:
    if not isinstance(rows, (list, tuple)) or not rows:
        raise ValidationError(MATRIX, f"is required: {size} rows of {size} numbers")
    if len(rows) != size:
        raise ValidationError(MATRIX, f"must have {size} rows (one per parameter), got {len(rows)}")
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != size:
            got = len(row) if isinstance(row, (list, tuple)) else repr(row)
            raise ValidationError(MATRIX, f"row {i} must have {size} entries, got {got}")
        for j, v in enumerate(row):
            if not is_number(v) or not math.isfinite(v):
                raise ValidationError(MATRIX, f"entry [{i}][{j}] must be a finite number, got {v!r}")
            if not -1.0 <= v <= 1.0:
                raise ValidationError(MATRIX, f"entry [{i}][{j}] must lie in [-1, 1], got {v!r}")
    matrix = np.asarray(rows, dtype=float)
    for i in range(size):
        if matrix[i, i] != 1.0:
            raise ValidationError(MATRIX, f"diagonal entry [{i}][{i}] must be 1, got {matrix[i, i]!r}")
    for i in range(size):
        for j in range(i):
            if abs(matrix[i, j] - matrix[j, i]) > SYMMETRY_TOLERANCE:
                raise ValidationError(
                    MATRIX, f"must be symmetric: [{i}][{j}] is {matrix[i, j]!r} but [{j}][{i}] is {matrix[j, i]!r}"
                )
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise ValidationError(
            MATRIX, "is not positive definite (no Cholesky factor): the correlations contradict each other"
        ) from None
    return matrix


def validate(spec: dict | None, params: list[Parameter]) -> Correlation | None:
    """The validated correlation, or None when the section is absent or empty."""
    if spec is not None and not isinstance(spec, dict):
        raise ValidationError("monte_carlo.correlation", "must be a mapping with parameters and matrix")
    if is_empty(spec):
        return None
    for key in spec:
        if key not in ("parameters", "matrix"):
            raise ValidationError(f"monte_carlo.correlation.{key}", "is not a correlation field (parameters, matrix)")
    columns = _columns(spec.get("parameters"), params)
    return Correlation(columns, _matrix(spec.get("matrix"), len(columns)))


def normal_score_target(spearman: np.ndarray) -> np.ndarray:
    """The Pearson correlation of normal scores whose Spearman correlation is `spearman`:
    2 sin(pi r / 6), the bivariate-normal relation; the input itself if that is not PD."""
    pearson = 2.0 * np.sin(np.pi * spearman / 6.0)
    np.fill_diagonal(pearson, 1.0)
    try:
        np.linalg.cholesky(pearson)
    except np.linalg.LinAlgError:
        return spearman
    return pearson


def iman_conover_orders(keys: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Row orders, one column per key column, that give the keys the target rank correlation.

    Van der Waerden scores Phi^-1(i / (n + 1)), randomly permuted per column by `rng`, are
    decorrelated with the Cholesky factor of their own correlation and recorrelated with the
    target's; column j of the result is then reordered so its ranks follow the scores'.
    Returns None when there are too few points for the scores to have a full-rank correlation.
    """
    n, k = keys.shape
    if n <= k:
        return None
    scores = stats.norm.ppf(np.arange(1, n + 1) / (n + 1))
    r = np.column_stack([rng.permutation(scores) for _ in range(k)])
    try:
        q = np.linalg.cholesky(np.corrcoef(r, rowvar=False))
    except np.linalg.LinAlgError:
        return None
    p = np.linalg.cholesky(normal_score_target(target))
    correlated = r @ np.linalg.inv(q).T @ p.T
    orders = np.empty((n, k), dtype=np.int64)
    for j in range(k):
        by_value = np.argsort(keys[:, j], kind="stable")
        rank = np.argsort(np.argsort(correlated[:, j], kind="stable"), kind="stable")
        orders[:, j] = by_value[rank]
    return orders


def impose(codes: np.ndarray, params: list[Parameter], corr: Correlation, rng: np.random.Generator) -> bool:
    """Reorder the correlated columns of `codes` in place; False if there were too few points."""
    keys = np.column_stack([params[c].rank_key(codes[:, c]) for c in corr.columns])
    orders = iman_conover_orders(keys, corr.matrix, rng)
    if orders is None:
        return False
    for j, c in enumerate(corr.columns):
        codes[:, c] = codes[orders[:, j], c]
    return True

"""Sensitivity of an output to the dispersed inputs, estimated from the batch's own sample (any design):
Spearman rank correlation, partial rank correlation (PRCC) and a given-data first-order index (SALib's
RBD-FAST / EASI: sort by the input, FFT, first M harmonics) with a bootstrap confidence interval."""

from __future__ import annotations

import numpy as np
from SALib.analyze import rbd_fast
from scipy import stats

M = 10  # RBD-FAST interference parameter (harmonics summed), SALib's default
RESAMPLES = 100  # bootstrap resamples, SALib's default
RESAMPLE_CAP = 2_000  # rows per bootstrap resample (SALib uses half the sample; capped, see first_order_ci)
MIN_RUNS_FIRST_ORDER = 4 * M


class RankedInputs:
    """Ranks, sort orders and bootstrap resamples of the numeric inputs on one subset of rows, shared by every
    output on that subset."""

    def __init__(self, x: np.ndarray, rng: np.random.Generator) -> None:
        n = len(x)
        self.x = x
        self.order = np.argsort(x, axis=0, kind="stable")
        self.ranks = _average_ranks(x, self.order)
        self.varies = np.ptp(x, axis=0) > 0 if n else np.zeros(x.shape[1], dtype=bool)
        self.size = min(n // 2, RESAMPLE_CAP)
        # One set of bootstrap resamples of rows for every input and output (SALib draws half the sample).
        self.draws = rng.integers(0, n, size=(RESAMPLES, self.size)) if n >= MIN_RUNS_FIRST_ORDER else None
        self._sorted: dict[int, np.ndarray] = {}

    def resampled_order(self, i: int) -> np.ndarray:
        """Per resample, positions in input i's sort order of the drawn rows, sorted: a resample sorted by
        the input without sorting the inputs again."""
        if i not in self._sorted:
            position = np.empty(len(self.x), dtype=np.int64)
            position[self.order[:, i]] = np.arange(len(self.x))
            self._sorted[i] = np.sort(position[self.draws], axis=1)
        return self._sorted[i]


def _average_ranks(x: np.ndarray, order: np.ndarray) -> np.ndarray:
    """scipy.stats.rankdata(x, axis=0) (ties get their average rank), reusing the sort order."""
    n = len(x)
    ranks = np.empty(x.shape)
    for i in range(x.shape[1]):
        xs = x[order[:, i], i]
        starts = np.r_[True, xs[1:] != xs[:-1]] if n else np.zeros(0, dtype=bool)
        group = np.cumsum(starts) - 1
        bounds = np.r_[np.flatnonzero(starts), n]
        ranks[order[:, i], i] = 0.5 * (bounds[group] + bounds[group + 1] - 1) + 1
    return ranks


def _none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def rank_correlations(ranked: RankedInputs, y: np.ndarray) -> tuple[list, list]:
    """(spearman, prcc) per input; None where undefined (constant input or output, too few runs)."""
    k = ranked.x.shape[1]
    n = len(y)
    spearman: list = [None] * k
    prcc: list = [None] * k
    if n < 3 or np.ptp(y) == 0:
        return spearman, prcc
    live = np.flatnonzero(ranked.varies)
    if not len(live):
        return spearman, prcc
    ry = stats.rankdata(y)
    c = np.corrcoef(np.column_stack([ranked.ranks[:, live], ry]), rowvar=False)
    for j, i in enumerate(live):
        spearman[i] = _none(c[j, -1])
    if n > len(live) + 2:
        p = np.linalg.pinv(c)
        d = np.sqrt(np.abs(np.diag(p)))
        for j, i in enumerate(live):
            prcc[i] = _none(np.clip(-p[j, -1] / (d[j] * d[-1]), -1.0, 1.0))
    return spearman, prcc


def _first_order_sorted(y_sorted: np.ndarray) -> np.ndarray:
    """RBD-FAST first-order index (with Tissot-Prieur bias correction) of outputs already sorted by the input,
    one per row: SALib's permute_outputs, compute_first_order and unskew_S1. compute_first_order's ratio of
    periodogram sums (harmonics 1..M over all non-zero frequencies) is taken here from numpy's real FFT of all
    rows at once; tests/results/test_summary.py checks it equals SALib's."""
    y_sorted = np.atleast_2d(y_sorted)
    n = y_sorted.shape[1]
    permuted = np.concatenate([y_sorted[:, ::2], y_sorted[:, 1::2][:, ::-1]], axis=1)
    power = np.abs(np.fft.rfft(permuted - permuted.mean(axis=1, keepdims=True), axis=1)) ** 2
    power[:, 1:] *= 2  # one-sided spectrum: every non-zero frequency counts twice ...
    if n % 2 == 0:
        power[:, -1] /= 2  # ... except Nyquist
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant resample has no variance: NaN, skipped
        s1 = power[:, 1 : M + 1].sum(axis=1) / power[:, 1:].sum(axis=1)
    return rbd_fast.unskew_S1(s1, M, n)


def first_order(ranked: RankedInputs, y: np.ndarray) -> list:
    """Per input {estimate, ci_95} or None (categorical inputs are not passed in; too few runs or a constant
    output or input gives None).

    The interval is SALib's RBD-FAST bootstrap (estimate +- z * std of resampled estimates, resamples of half
    the sample); above 2 x RESAMPLE_CAP runs a resample holds RESAMPLE_CAP rows and the spread is scaled by
    sqrt(RESAMPLE_CAP / (n / 2)), the estimator's 1/sqrt(n) rate, which keeps 100,000 runs fast."""
    k = ranked.x.shape[1]
    n = len(y)
    out: list = [None] * k
    if n < MIN_RUNS_FIRST_ORDER or np.ptp(y) == 0:
        return out
    scale = np.sqrt(ranked.size / (n // 2))
    z = stats.norm.ppf(0.975)
    for i in np.flatnonzero(ranked.varies):
        y_ord = y[ranked.order[:, i]]
        estimate = float(_first_order_sorted(y_ord)[0])
        boot = _first_order_sorted(y_ord[ranked.resampled_order(i)])
        boot = boot[np.isfinite(boot)]
        spread = float(z * boot.std(ddof=1) * scale) if len(boot) > 1 else np.nan
        ci = [estimate - spread, estimate + spread] if np.isfinite(spread) else None
        out[i] = {"estimate": estimate, "ci_95": ci}
    return out

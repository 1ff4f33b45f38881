"""The study's answer (GET /batches/{id}/summary): run counts, failure probability with its intervals,
output statistics with Wilks bounds, sensitivity and convergence, computed from a batch's Records."""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import stats

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common import names
from lynx_results import sensitivity
from lynx_results.records import Records

PERCENTILES = (1, 5, 50, 95, 99)
CONVERGENCE_POINTS = 200
WILKS_COVERAGE = 0.95
WILKS_CONFIDENCE = 0.95


def _f(x: float) -> float | None:
    """A float for JSON; None for NaN and infinities."""
    x = float(x)
    return x if np.isfinite(x) else None


def proportion(k: int, n: int) -> dict:
    """{estimate, wilson_95, clopper_pearson_95} of k events in n trials (scipy.stats.binomtest); None when n=0."""
    if n == 0:
        return {"estimate": None, "wilson_95": None, "clopper_pearson_95": None}
    test = stats.binomtest(int(k), int(n))
    wilson = test.proportion_ci(confidence_level=0.95, method="wilson")
    exact = test.proportion_ci(confidence_level=0.95, method="exact")
    return {
        "estimate": k / n,
        "wilson_95": [float(wilson.low), float(wilson.high)],
        "clopper_pearson_95": [float(exact.low), float(exact.high)],
    }


def wilks_order(n: int, coverage: float = WILKS_COVERAGE, confidence: float = WILKS_CONFIDENCE) -> int:
    """The largest k such that the k-th largest of n values bounds the `coverage` quantile from above with
    `confidence` (P(Binomial(n, 1 - coverage) >= k) >= confidence); 0 when n is too small (n < 59 at 95/95)."""
    if n == 0:
        return 0
    k = int(stats.binom.ppf(1 - confidence, n, 1 - coverage)) + 1  # P(B <= k - 1) first reaches 1 - confidence
    while k > 0 and stats.binom.sf(k - 1, n, 1 - coverage) < confidence:  # sf(k - 1) = P(B >= k)
        k -= 1
    return k


def output_stats(values: np.ndarray, present: np.ndarray | None = None) -> dict:
    """Statistics of one output over the runs that produced it (`present`, default: not NaN); NaN and infinities
    are skipped and counted."""
    present = values[present] if present is not None else values[~np.isnan(values)]
    x = present[np.isfinite(present)]
    n = len(x)
    out: dict = {
        "n": n,
        "non_finite": int(len(present) - n),
        "mean": None,
        "mean_ci_95": None,
        "std": None,
        "min": None,
        "max": None,
        "percentiles": None,
    }
    if n == 0:
        return out
    mean = float(np.mean(x))
    out.update(mean=mean, min=float(x.min()), max=float(x.max()))
    out["percentiles"] = {f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(x, PERCENTILES), strict=True)}
    if n >= 2:
        std = float(np.std(x, ddof=1))
        out["std"] = std
        if std > 0:
            lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=std / np.sqrt(n))
            out["mean_ci_95"] = [float(lo), float(hi)]
        else:
            out["mean_ci_95"] = [mean, mean]
    k = wilks_order(n)
    if k:
        xs = np.sort(x)
        out["wilks_95_95"] = {
            "upper": float(xs[n - k]),
            "upper_order_statistic": n - k + 1,
            "lower": float(xs[k - 1]),
            "lower_order_statistic": k,
            "note": f"one-sided 95/95: the {k}-th largest (smallest) of {n} runs bounds the 95th (5th) percentile "
            "from above (below) with 95% confidence",
        }
    return out


def run_counts(rec: Records) -> dict:
    failed = rec.failed
    reasons = Counter(names.TERMINATION_REASON.name(int(r)) or "unknown" for r in rec.reason[failed])
    return {
        "total": len(rec),
        "finished": int(rec.finished.sum()),
        "succeeded": int((~failed & rec.finished).sum()),
        "failed": int(failed.sum()),
        "early_terminated": int(_early(rec).sum()),
        "failures_by_reason": dict(sorted(reasons.items())),
    }


def _early(rec: Records) -> np.ndarray:
    return rec.failed & (rec.reason == pb.TERMINATION_REASON_EARLY_TERMINATION)


def failure_probability(rec: Records) -> dict:
    """Failures over finished runs, and per early-termination condition ("variable condition")."""
    n = int(rec.finished.sum())
    out = proportion(int(rec.failed.sum()), n)
    early = _early(rec)
    by_condition = Counter(c or "unknown" for c in rec.condition[early])
    out["by_condition"] = {c: {"failed": k, **proportion(k, n)} for c, k in sorted(by_condition.items())}
    return out


def _targets(rec: Records, finished: np.ndarray) -> dict[str, np.ndarray]:
    """Numeric outputs (over finished runs; NaN where absent) and the failure indicator."""
    return {name: rec.numbers[name][finished] for name in sorted(rec.numbers)}


def _by_level(levels: np.ndarray, y: np.ndarray, failure: bool) -> dict:
    out = {}
    for level in sorted({lv for lv in levels if lv is not None}, key=str):
        sel = levels == level
        ys = y[sel]
        ys = ys[np.isfinite(ys)]
        if failure:
            out[level] = {
                "n": int(len(ys)),
                "failure_rate": _f(ys.mean()) if len(ys) else None,
                "wilson_95": proportion(int(ys.sum()), len(ys))["wilson_95"],
            }
        else:
            out[level] = {"n": int(len(ys)), "mean": _f(ys.mean()) if len(ys) else None}
    return out


def sensitivity_of(rec: Records, seed: int = 0) -> dict:
    """{"outputs": {output: {input: ...}}, "failure": {input: ...}} over finished runs."""
    finished = rec.finished
    numeric = list(rec.inputs.numeric)
    x_all = (
        np.column_stack([rec.numeric_inputs[n][finished] for n in numeric])
        if numeric
        else np.empty((int(finished.sum()), 0))
    )
    x_ok = np.all(np.isfinite(x_all), axis=1)
    rng = np.random.default_rng(seed)
    cache: dict[bytes, sensitivity.RankedInputs] = {}
    targets = _targets(rec, finished)
    targets_failure = rec.failed[finished].astype(np.float64)

    def one(y: np.ndarray, failure: bool) -> dict:
        rows = x_ok & np.isfinite(y)
        key = np.packbits(rows).tobytes()
        if key not in cache:
            cache[key] = sensitivity.RankedInputs(x_all[rows], rng)
        ranked = cache[key]
        ys = y[rows]
        rho, prcc = sensitivity.rank_correlations(ranked, ys)
        s1 = sensitivity.first_order(ranked, ys)
        out = {name: {"spearman": rho[i], "prcc": prcc[i], "first_order": s1[i]} for i, name in enumerate(numeric)}
        for name in rec.inputs.categorical:
            out[name] = {"by_level": _by_level(rec.categorical_inputs[name][finished], y, failure)}
        return out

    return {"outputs": {name: one(y, False) for name, y in targets.items()}, "failure": one(targets_failure, True)}


def _points(n: int, count: int = CONVERGENCE_POINTS) -> np.ndarray:
    """Completed-run counts 1..n, at most `count` of them, evenly spread, n always included."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.linspace(1, n, min(n, count)).round().astype(np.int64))


def convergence(rec: Records) -> dict:
    """Running mean of each output and running failure probability (Wilson 95 %) by completed-run count,
    runs ordered by finish time, downsampled to at most CONVERGENCE_POINTS points."""
    finished = np.flatnonzero(rec.finished)
    order = finished[np.argsort(rec.finished_at[finished], kind="stable")]  # NaN (no time) last, in run order
    counts = _points(len(order))
    idx = counts - 1
    failed = np.cumsum(rec.failed[order])
    fp = {"estimate": [], "wilson_95": []}
    for k, n in zip(failed[idx], counts, strict=True):
        ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
        fp["estimate"].append(int(k) / int(n))
        fp["wilson_95"].append([float(ci.low), float(ci.high)])
    outputs = {}
    for name in sorted(rec.numbers):
        y = rec.numbers[name][order]
        ok = np.isfinite(y)
        sums = np.cumsum(np.where(ok, y, 0.0))[idx]
        ns = np.cumsum(ok)[idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / ns
        outputs[name] = {"n": ns.tolist(), "mean": [_f(m) if c else None for m, c in zip(means, ns, strict=True)]}
    return {"runs": counts.tolist(), "failure_probability": fp, "outputs": outputs}


def summarize(rec: Records, seed: int = 0) -> dict:
    """The summary document of issue 10 item 3 (see docs/results.md)."""
    finished = rec.finished
    return {
        "runs": run_counts(rec),
        "failure_probability": failure_probability(rec),
        "outputs": {
            name: output_stats(rec.numbers[name][finished], rec.present[name][finished]) for name in sorted(rec.numbers)
        },
        "sensitivity": sensitivity_of(rec, seed),
        "convergence": convergence(rec),
    }

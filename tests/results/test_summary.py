"""The summary on synthetic batches with known truth: counts, failure probability and its intervals, output
statistics, Wilks bounds, sensitivity (Ishigami), categorical inputs, convergence and degenerate batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import synthetic_runs as sr
from SALib.analyze import rbd_fast
from scipy import stats

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_results import records, sensitivity, summary

FAILED, EARLY, EXITED = pb.JOB_STATUS_FAILED, pb.TERMINATION_REASON_EARLY_TERMINATION, pb.TERMINATION_REASON_EXITED


def summarize(cfg, runs) -> dict:
    document = summary.summarize(records.records(cfg, sr.chunks(runs, 97)))
    json.dumps(document, allow_nan=False)  # the gateway's encoding: no NaN anywhere
    return document


def test_ishigami_mean_variance_and_first_order_indices():
    cfg, runs, y = sr.ishigami_runs(2000)
    s = summarize(cfg, runs)
    out = s["outputs"]["y"]
    assert out["n"] == 2000 and out["mean"] == pytest.approx(y.mean())
    assert out["mean_ci_95"][0] <= sr.ISHIGAMI_MEAN <= out["mean_ci_95"][1]
    assert out["std"] ** 2 == pytest.approx(sr.ISHIGAMI_VAR, rel=0.1)
    assert out["percentiles"]["p50"] == pytest.approx(np.percentile(y, 50))
    sens = s["sensitivity"]["outputs"]["y"]
    for x, truth in zip(("x1", "x2", "x3"), sr.ISHIGAMI_S1, strict=True):
        fo = sens[x]["first_order"]
        assert abs(fo["estimate"] - truth) < 0.06, (x, fo)
        assert fo["ci_95"][0] < fo["estimate"] < fo["ci_95"][1]
    assert sens["x1"]["spearman"] > 0.3 and abs(sens["x2"]["spearman"]) < 0.1  # x2 acts through sin^2: no rank trend


def test_first_order_is_salibs_rbd_fast():
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(501, 2))
    y = np.sin(6 * x[:, 0]) + 0.3 * x[:, 1]
    ranked = sensitivity.RankedInputs(x, rng)
    ours = [fo["estimate"] for fo in sensitivity.first_order(ranked, y)]
    theirs = rbd_fast.analyze({"num_vars": 2, "names": ["a", "b"], "bounds": [[0, 1]] * 2}, x, y, seed=1)["S1"]
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_failure_region_estimate_is_exact_and_intervals_are_scipys():
    cfg, runs, _ = sr.ishigami_runs(400, seed=5)
    failed = 0
    for r in runs:
        x1 = r.parameters[0].value.number
        if x1 > 2.0:  # failure region of probability (pi - 2) / 2 pi; half of them by an early termination
            failed += 1
            r.status = FAILED
            early = failed % 2 == 0
            r.termination_reason = EARLY if early else EXITED
            if early:
                r.termination_variable, r.termination_condition = "x1", "> 2"
    runs.append(sr.run(400, {"x1": 0.0, "x2": 0.0, "x3": 0.0}, {}, status=pb.JOB_STATUS_PENDING))
    s = summarize(cfg, runs)
    assert s["runs"] == {
        "total": 401,
        "finished": 400,
        "succeeded": 400 - failed,
        "failed": failed,
        "early_terminated": failed // 2,
        "failures_by_reason": {"early_termination": failed // 2, "exited": failed - failed // 2},
    }
    fp = s["failure_probability"]
    assert fp["estimate"] == failed / 400
    test = stats.binomtest(failed, 400)
    assert fp["wilson_95"] == list(test.proportion_ci(method="wilson"))
    assert fp["clopper_pearson_95"] == list(test.proportion_ci(method="exact"))
    by = fp["by_condition"]["x1 > 2"]
    assert by["failed"] == failed // 2 and by["estimate"] == (failed // 2) / 400
    assert by["wilson_95"] == list(stats.binomtest(failed // 2, 400).proportion_ci(method="wilson"))
    assert s["sensitivity"]["failure"]["x1"]["spearman"] > 0.4
    conv = s["convergence"]
    assert conv["runs"][-1] == 400 and len(conv["runs"]) <= summary.CONVERGENCE_POINTS
    assert conv["failure_probability"]["estimate"][-1] == fp["estimate"]
    assert conv["failure_probability"]["wilson_95"][-1] == pytest.approx(fp["wilson_95"])
    assert conv["outputs"]["y"]["mean"][-1] == pytest.approx(s["outputs"]["y"]["mean"])


def test_convergence_follows_finish_time_not_run_order():
    cfg = sr.config(["x"])
    runs = [sr.run(i, {"x": float(i)}, {"y": float(i)}, finished_at=1e9 - i) for i in range(10)]  # last run first
    conv = summarize(cfg, runs)["convergence"]
    assert conv["runs"] == list(range(1, 11))
    assert conv["outputs"]["y"]["mean"][0] == 9.0 and conv["outputs"]["y"]["mean"][-1] == 4.5


def test_wilks_bound_is_the_right_order_statistic():
    cfg = sr.config(["x"])
    for n, k in ((58, 0), (59, 1), (93, 2), (124, 3)):
        values = np.arange(n, dtype=float)
        out = summarize(cfg, [sr.run(i, {"x": v}, {"y": v}) for i, v in enumerate(values)])["outputs"]["y"]
        if k == 0:
            assert "wilks_95_95" not in out
            continue
        w = out["wilks_95_95"]
        assert (w["upper"], w["upper_order_statistic"], w["lower"], w["lower_order_statistic"]) == (
            n - k,
            n - k + 1,
            k - 1,
            k,
        )
        assert stats.binom.sf(k - 1, n, 0.05) >= 0.95 > stats.binom.sf(k, n, 0.05)


def test_categorical_inputs_are_reported_by_level():
    cfg = sr.config(["x"], choices={"engine": ["ion", "chemical"]})
    runs = []
    for i in range(200):
        level = "ion" if i % 2 else "chemical"
        runs.append(
            sr.run(
                i,
                {"x": i / 200, "engine": level},
                {"y": 10.0 if level == "ion" else 2.0},
                status=FAILED if level == "ion" and i % 5 == 1 else pb.JOB_STATUS_COMPLETED,
            )
        )
    s = summarize(cfg, runs)
    by_level = s["sensitivity"]["outputs"]["y"]["engine"]["by_level"]
    assert by_level == {"chemical": {"n": 100, "mean": 2.0}, "ion": {"n": 100, "mean": 10.0}}
    failure = s["sensitivity"]["failure"]["engine"]["by_level"]
    assert failure["chemical"]["failure_rate"] == 0.0 and failure["ion"]["failure_rate"] == 0.2
    assert "spearman" not in s["sensitivity"]["outputs"]["y"]["engine"]


def test_degenerate_batches():
    cfg = sr.config(["x"])
    nothing = summarize(cfg, [sr.run(0, {"x": 1.0}, {}, status=pb.JOB_STATUS_RUNNING)])
    assert nothing["runs"]["finished"] == 0
    assert nothing["failure_probability"]["estimate"] is None and nothing["convergence"]["runs"] == []

    one = summarize(cfg, [sr.run(0, {"x": 1.0}, {"y": 3.0})])["outputs"]["y"]
    assert (one["n"], one["mean"], one["std"], one["mean_ci_95"]) == (1, 3.0, None, None)

    constant = summarize(cfg, [sr.run(i, {"x": float(i)}, {"y": 5.0}) for i in range(100)])
    assert constant["outputs"]["y"]["std"] == 0 and constant["outputs"]["y"]["mean_ci_95"] == [5.0, 5.0]
    assert constant["sensitivity"]["outputs"]["y"]["x"] == {"spearman": None, "prcc": None, "first_order": None}

    values = [1.0, float("nan"), float("inf"), 2.0, True, "text"]  # NaN and inf skipped and counted, True is 1
    mixed = summarize(cfg, [sr.run(i, {"x": float(i)}, {"y": v, "s": "a"}) for i, v in enumerate(values)])
    assert "s" not in mixed["outputs"]  # strings are ignored by statistics
    y = mixed["outputs"]["y"]
    assert (y["n"], y["non_finite"], y["mean"]) == (3, 2, pytest.approx(4 / 3))

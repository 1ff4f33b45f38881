"""RunsTable: the server-side sort, filter and page of a batch's runs, and the charts' numbers (no stack)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lynx_common.errors import ValidationError
from lynx_gateway.dashboard.runs import Query, RunsTable, parse_query


def runs(n: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = float(rng.uniform(0, 1))
        failed = x > 0.8
        out.append({"run_id": i, "job_id": f"job-{i}", "seed": i * 7, "status": "Failed" if failed else "Completed",
                    "reason": "early_termination" if failed else "exited", "attempts": 1 + i % 3,
                    "seconds": 1.0 + i % 5, "runner": f"r{i % 2}", "inputs": {"x": x, "mode": "ab"[i % 2]},
                    "outputs": {} if failed else {"y": 2 * x}, "termination": None, "finished_at": float(n - i)})
    return out


def test_sort_filter_and_page_agree_with_plain_python():
    data = runs(500)
    table = RunsTable.build(reversed(data))
    q = Query(sort="in.x", descending=True, statuses=("Completed",), ranges={"in.x": (0.2, 0.7)}, page=2, size=25)
    page = table.query(q)
    expected = sorted((r for r in data if r["status"] == "Completed" and 0.2 <= r["inputs"]["x"] <= 0.7),
                      key=lambda r: -r["inputs"]["x"])
    assert page.total == len(expected) and page.pages == math.ceil(len(expected) / 25)
    assert [r["run_id"] for r in page.rows] == [r["run_id"] for r in expected[25:50]]


def test_missing_values_sort_last_both_ways_and_strings_sort():
    table = RunsTable.build(runs(50))
    for descending in (False, True):
        rows = table.query(Query(sort="out.y", descending=descending, size=50)).rows
        have = [r["outputs"]["y"] for r in rows if "y" in r["outputs"]]
        assert have == sorted(have, reverse=descending) and "y" not in rows[-1]["outputs"]
    modes = [r["inputs"]["mode"] for r in table.query(Query(sort="in.mode", size=50)).rows]
    assert modes == sorted(modes)


def test_bad_queries_name_their_parameter():
    table = RunsTable.build(runs(5))
    with pytest.raises(ValidationError) as e:
        table.query(Query(sort="in.nope"))
    assert e.value.field == "sort"
    with pytest.raises(ValidationError) as e:
        table.query(Query(ranges={"in.mode": (0, 1)}))
    assert e.value.field == "min.in.mode"
    with pytest.raises(ValidationError) as e:
        table.query(Query(size=7))
    assert e.value.field == "size"
    with pytest.raises(ValidationError) as e:
        parse_query({"max.out.y": "big"}, lambda _: [])
    assert e.value.field == "max.out.y"
    q = parse_query({"sort": "out.y", "order": "desc", "min.in.x": "0.5", "page": "3"}, lambda k: ["Failed"] if
                    k == "status" else [])
    assert (q.sort, q.descending, q.ranges, q.page, q.statuses) == ("out.y", True, {"in.x": (0.5, None)}, 3,
                                                                     ("Failed",))


def test_convergence_ends_at_the_batch_estimate_with_scipys_wilson_interval():
    data = runs(300)
    table = RunsTable.build(data)
    c = table.convergence("y", points=50)
    failed = sum(r["status"] == "Failed" for r in data)
    ci = stats.binomtest(failed, 300).proportion_ci(method="wilson")
    assert c["n"][-1] == 300 and len(c["n"]) <= 60
    assert c["p"][-1] == pytest.approx(failed / 300)
    assert (c["p_lo"][-1], c["p_hi"][-1]) == pytest.approx((ci.low, ci.high), abs=1e-9)
    ys = [r["outputs"]["y"] for r in data if "y" in r["outputs"]]
    assert c["mean"][-1] == pytest.approx(np.mean(ys))
    h = table.histogram("y")
    assert sum(h["succeeded"]) == len(ys) and sum(h["failed"]) == 0 and len(h["edges"]) == 31


def test_a_100000_run_table_pages_about_as_fast_as_a_5_run_one(capsys):
    """Not a timing test: prints the ratio so a slowdown is visible in the log (see bench/bench_dashboard.py)."""
    import time

    big, small = RunsTable.build(runs(100_000)), RunsTable.build(runs(5))
    q = Query(sort="out.y", descending=True, statuses=("Completed",), ranges={"in.x": (0.1, 0.9)})
    times = {}
    for name, table in (("5", small), ("100000", big)):
        t0 = time.perf_counter()
        page = table.query(q)
        times[name] = time.perf_counter() - t0
        assert len(page.rows) == min(50, page.total)
    with capsys.disabled():
        print(f"\nruns-table page: 5 runs {times['5'] * 1e3:.2f} ms, 100,000 runs {times['100000'] * 1e3:.1f} ms")

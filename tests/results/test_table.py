"""The runs table: one row per run with every input and output, typed, streamed chunk by chunk as CSV and Parquet."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow.parquet as pq
import stored_runs
import synthetic_runs as sr

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_results import records, table


def batch():
    cfg = sr.config(["a"], choices={"mode": ["x", 2]}, constants={"k": 1.5})
    runs = [
        sr.run(0, {"a": 1.0, "mode": "x", "k": 1.5}, {"r": 1.5, "ok": True, "name": 'hi, "there"', "a": 9.0}),
        sr.run(
            1,
            {"a": 3.0, "mode": 2, "k": 1.5},
            {"r": 2.5, "ok": False, "name": 3.0},
            status=pb.JOB_STATUS_FAILED,
            reason=pb.TERMINATION_REASON_EARLY_TERMINATION,
            condition=("alt", "< 5"),
        ),
        sr.run(
            2,
            {"a": 4.0, "mode": "x", "k": 1.5},
            {},
            status=pb.JOB_STATUS_PENDING,
            reason=pb.TERMINATION_REASON_UNSPECIFIED,
        ),
    ]
    return cfg, sr.chunks(runs, 2)


def test_csv_has_a_row_per_run_with_inputs_outputs_and_ending():
    cfg, chunks = batch()
    lay = table.layout(cfg, chunks)
    parts = list(table.csv_chunks(lay, chunks))
    assert len(parts) == 1 + len(chunks)  # header, then one piece per chunk: streamed
    rows = list(csv.DictReader(io.StringIO(b"".join(parts).decode())))
    assert list(rows[0]) == [
        "run_id",
        "job_id",
        "seed",
        "a",
        "mode",
        "k",
        "output.a",
        "name",
        "ok",
        "r",
        "status",
        "reason",
        "attempts",
        "seconds",
        "runner",
        "termination_condition",
    ]
    assert rows[0]["name"] == 'hi, "there"' and rows[0]["ok"] == "true" and rows[0]["output.a"] == "9"
    assert rows[1]["mode"] == "2" and rows[1]["name"] == "3.0" and rows[1]["status"] == "Failed"
    assert rows[1]["reason"] == "early_termination" and rows[1]["termination_condition"] == "alt < 5"
    assert rows[2]["r"] == "" and rows[2]["status"] == "Pending" and rows[2]["reason"] == ""


def test_parquet_keeps_types_and_has_a_row_group_per_chunk():
    cfg, chunks = batch()
    lay = table.layout(cfg, chunks)
    data = b"".join(table.parquet_chunks(lay, chunks))
    f = pq.ParquetFile(io.BytesIO(data))
    assert f.metadata.num_row_groups == len(chunks)
    t = f.read()
    assert str(t.schema.field("ok").type) == "bool" and str(t.schema.field("r").type) == "double"
    assert t.column("ok").to_pylist() == [True, False, None]
    assert t.column("run_id").to_pylist() == [0, 1, 2]


def test_a_large_batch_streams_in_bounded_pieces():
    cfg, runs = sr.wide_runs(3000, inputs=4, outputs=2)
    chunks = sr.chunks(runs, 500)
    lay = table.layout(cfg, chunks)
    sizes = [len(p) for p in table.csv_chunks(lay, chunks)]
    assert len(sizes) == 7 and max(sizes) < sum(sizes) / 5
    rows = b"".join(table.csv_chunks(lay, chunks)).decode().splitlines()
    assert len(rows) == 3001


def test_pages_read_through_the_fast_view_give_the_same_columns_and_table():
    cfg, chunks = batch()
    runs = [r for c in chunks for r in c]
    runs.append(sr.run(3, {"a": 0.0, "mode": "x", "k": 0.0}, {"name": "t", "r": float("nan")}))  # one kind each
    pages = [pb.StreamRunsResponse(runs=runs[:2]), pb.StreamRunsResponse(runs=runs[2:])]
    slow = records.records(cfg, [runs])
    for fast in (records.records(cfg, pages), records.records(cfg, [p.SerializeToString() for p in pages])):
        for attr in ("run_id", "job_id", "seed", "status", "reason", "condition", "finished_at", "error"):
            assert list(getattr(fast, attr)) == list(getattr(slow, attr)) or attr == "finished_at"
        assert np.array_equal(fast.finished_at, slow.finished_at, equal_nan=True)
        for kind in ("numeric_inputs", "categorical_inputs", "numbers", "texts", "present"):
            a, b = getattr(slow, kind), getattr(fast, kind)
            assert a.keys() == b.keys()
            for name in a:
                assert a[name].tolist() == b[name].tolist() or np.array_equal(a[name], b[name], equal_nan=True)
        assert fast.booleans == slow.booleans
    lay = table.layout(cfg, [p.SerializeToString() for p in pages])
    assert lay == table.layout(cfg, [runs])
    as_bytes = b"".join(table.csv_chunks(lay, [p.SerializeToString() for p in pages]))
    assert as_bytes == b"".join(table.csv_chunks(lay, [runs]))


async def test_columnar_and_row_pages_give_the_same_table_at_every_page_size(tmp_path):
    store = await stored_runs.stored_batch(tmp_path / "scheduler.db")
    cfg = stored_runs.config()
    try:
        for size in (1, 2, 3, 5, 8, 1000):  # pages ending inside, at and across the sample chunks' edge (run 5)
            row_pages = await stored_runs.pages(store, size, columnar=False)
            col_pages = await stored_runs.pages(store, size, columnar=True)
            assert len(col_pages) == len(row_pages) == -(-11 // size)
            lay = table.layout(cfg, col_pages)
            assert lay == table.layout(cfg, row_pages)
            assert dict(lay.outputs) == {"a": "number", "count": "number", "name": "text", "ok": "flag", "r": "text"}
            csv_text = b"".join(table.csv_chunks(lay, col_pages))
            assert csv_text == b"".join(table.csv_chunks(lay, row_pages))
            parquet = pq.read_table(io.BytesIO(b"".join(table.parquet_chunks(lay, col_pages))))
            assert parquet.equals(pq.read_table(io.BytesIO(b"".join(table.parquet_chunks(lay, row_pages)))))
    finally:
        await store.close()
    rows = list(csv.DictReader(io.StringIO(csv_text.decode())))  # the whole batch in one page
    assert [r["run_id"] for r in rows] == [str(i) for i in range(11)]
    # a missing output is an empty cell, never 0, false or "": run 3 finished without outputs
    assert [rows[3][k] for k in ("r", "ok", "count", "name")] == ["", "", "", ""]
    assert [r["ok"] for r in rows] == ["true", "false", "", "", "", "false", "true", "", "", "", ""]
    assert [r["count"] for r in rows[3:6]] == ["", "7", "0"]
    assert [r["r"] for r in rows] == ["1.5", "2.5", "", "", "4", "nan", "oops", "", "6.5", "", "7.5"]
    assert [r["count"] for r in rows[8:]] == ["3", "", "4"]
    assert rows[1]["name"] == "3.0" and rows[0]["name"] == 'hi, "there"' and rows[0]["output.a"] == "9"
    assert [r["mode"] for r in rows] == ["x", "2"] * 5 + ["x"] and rows[7]["a"] == "2.5" and rows[7]["seed"] == "1007"
    assert rows[1]["termination_condition"] == "alt < 5" and rows[1]["status"] == "Failed"
    assert parquet.column("ok").to_pylist() == [True, False, None, None, None, False, True, None, None, None, None]


async def test_columnar_pages_give_the_same_columns_as_row_pages(tmp_path):
    store = await stored_runs.stored_batch(tmp_path / "scheduler.db")
    cfg = stored_runs.config()
    try:
        slow = records.records(cfg, await stored_runs.pages(store, 3, columnar=False))
        fast = records.records(cfg, await stored_runs.pages(store, 3, columnar=True))
    finally:
        await store.close()
    for attr in ("run_id", "job_id", "seed", "status", "reason", "attempts", "seconds", "runner", "condition", "error"):
        assert list(getattr(fast, attr)) == list(getattr(slow, attr)), attr
    assert np.array_equal(fast.finished_at, slow.finished_at, equal_nan=True)
    for kind in ("numeric_inputs", "categorical_inputs", "numbers", "texts", "present"):
        a, b = getattr(slow, kind), getattr(fast, kind)
        assert sorted(a) == sorted(b), kind
        for name in a:
            assert a[name].tolist() == b[name].tolist() or np.array_equal(a[name], b[name], equal_nan=True), name
    assert fast.booleans == slow.booleans == {"ok"}
    assert fast.present["r"].tolist() == [True, True, False, False, True, True, False, False, True, False, True]
    assert (
        fast.error.tolist()[6] == "exit 1"
        and fast.error.tolist()[9] == "no summary.json"
        and fast.finished_at[2] != fast.finished_at[2]
    )  # pending: NaN


async def test_runs_kept_before_sample_chunks_and_runs_whose_chunk_is_gone_give_the_same_table(tmp_path):
    store = await stored_runs.stored_batch(tmp_path / "scheduler.db")
    cfg = stored_runs.config()
    try:
        async with store.transaction() as tx:  # as a schema-1 file upgraded in place keeps them
            await tx.db.execute(
                "UPDATE jobs SET sample_id = NULL, seed = 77, parameters = ? WHERE run_id IN (8, 10)",
                (json.dumps({"a": 2.0, "mode": True, "k": 1.5}),),
            )
            await tx.db.execute("UPDATE jobs SET sample_id = NULL WHERE run_id = 1")
        for size in (1, 3, 1000):
            row_pages = await stored_runs.pages(store, size, columnar=False)
            col_pages = await stored_runs.pages(store, size, columnar=True)
            lay = table.layout(cfg, col_pages)
            csv_text = b"".join(table.csv_chunks(lay, col_pages))
            assert csv_text == b"".join(table.csv_chunks(lay, row_pages))
    finally:
        await store.close()
    rows = list(csv.DictReader(io.StringIO(csv_text.decode())))
    assert [(r["seed"], r["a"], r["mode"]) for r in rows[8:]] == [
        ("77", "2", "true"),
        ("1009", "3.5", "2"),
        ("77", "2", "true"),
    ]
    assert (rows[1]["seed"], rows[1]["a"], rows[1]["mode"]) == ("0", "", "")  # no inputs recorded

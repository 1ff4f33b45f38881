"""Benchmark: the study's answer for a synthetic finished batch (default 100,000 runs, 20 uniform inputs,
5 outputs, ~3 % early-terminated failures) kept in a real scheduler store (SQLite file, sample chunks, one
stored JobResult per job), read through StreamRuns' page builder (lynx_scheduler.runs, in process, no gRPC)
as row pages (Run messages) and as columnar pages (RunsPage), then turned into columns, the summary, the runs
table as CSV and Parquet (rows/s), and the HTML report, as the gateway does.

Baselines in the same process, so a busy machine shows in both: the row path (what the gateway did before the
columnar page) for every table figure, and plain numpy statistics for the summary. Targets from issue 10:
summary < 5 s, runs.csv >= 50,000 rows/s end to end. Times are wall and CPU seconds; rates and totals use CPU
seconds, which a machine shared with other work distorts least. An export reads StreamRuns once into a spool
(lynx_results.table.PageSpool: the output names, then the rows from the spool), so "end to end" is the
scheduler's pages once plus spooling and writing the table; the two-pass figure (what the gateway did before
the spool: StreamRuns read twice) is printed beside it.

Run: .venv/bin/python bench/bench_results.py [--runs N] [--inputs D] [--outputs K]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
from google.protobuf import json_format

from lynx.common.v1 import batch_config_pb2 as cpb
from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_gateway.results import PAGE  # the page size the gateway asks StreamRuns for
from lynx_results import records, report, summary, table
from lynx_scheduler.rows import BatchRow
from lynx_scheduler.runs import stream_runs
from lynx_scheduler.store import Store

CHUNK = 2048  # runs per stored sample chunk: pages straddle chunks now and then, as they do live


async def fill(store: Store, runs: int, inputs: int, outputs: int, seed: int = 1) -> cpb.BatchConfig:
    """A finished batch "bench" in `store`: sample chunks as the sampler sends them, then every job finished
    with its JobResult (5 numeric outputs), as a runner reports it."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, size=(runs, inputs))
    y = x[:, :outputs] + 0.5 * np.roll(x, -1, axis=1)[:, :outputs] ** 2
    failed = x[:, 0] > 0.94 * np.pi
    names = [f"x{i:02d}" for i in range(inputs)]
    config = json_format.ParseDict(
        {
            "monte_carlo": {"runs": runs, "seed": seed},
            "dispersions": [
                {"name": n, "distribution": {"type": "uniform", "min": -np.pi, "max": np.pi}} for n in names
            ],
        },
        cpb.BatchConfig(),
    )
    await store.insert_hidden_batch(
        BatchRow("bench", "bench", config.SerializeToString(), seed, runs, "python", "", 0, 0, False, 1.7e9, None, None)
    )
    for first in range(0, runs, CHUNK):
        last = min(first + CHUNK, runs)
        chunk = ppb.RunColumns(
            run_ids=range(first, last),
            seeds=range(1000 + first, 1000 + last),
            parameters=[
                ppb.ParameterColumn(name=n, numbers=ppb.DoubleColumn(values=x[first:last, j].tolist()))
                for j, n in enumerate(names)
            ],
        )
        await store.add_sample("bench", first, chunk.SerializeToString(), last - first)
    await store.reveal_batch("bench", runs)
    updates = []
    for i in range(runs):
        result = pb.JobResult(
            success=not failed[i],
            exit_code=0,
            execution_time_secs=1.5,
            termination_reason=pb.TERMINATION_REASON_EARLY_TERMINATION if failed[i] else pb.TERMINATION_REASON_EXITED,
            outputs=[
                ppb.Parameter(name=f"y{j}", value=ppb.ParameterValue(number=v)) for j, v in enumerate(y[i].tolist())
            ],
        )
        if failed[i]:
            result.termination_variable, result.termination_condition = "x00", "> 2.95"
        status = "Failed" if failed[i] else "Completed"
        updates.append((status, "runner-01", result.SerializeToString(), 1.7e9 + i * 0.01, "bench", i))
    async with store.transaction() as tx:
        await tx.db.executemany(
            "UPDATE jobs SET status = ?, attempts = 1, runner_id = ?, result = ?, finished_at = ?"
            " WHERE batch_id = ? AND run_id = ?",
            updates,
        )
    return config


def timed(label: str, fn, rows: int | None = None):
    """Run fn; print wall and CPU seconds and the rate by CPU time. Returns (result, CPU seconds)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    secs, cpu_secs = time.perf_counter() - start, time.process_time() - cpu
    rate = f"  {rows / cpu_secs:>10,.0f} rows/CPU-s" if rows else ""
    print(f"{label:<46} {secs:8.2f} s wall {cpu_secs:8.2f} s CPU{rate}")
    return result, cpu_secs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--inputs", type=int, default=20)
    parser.add_argument("--outputs", type=int, default=5)
    args = parser.parse_args()
    n = args.runs
    print(f"{n:,} runs x {args.inputs} inputs x {args.outputs} outputs")
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as tmp:
        store = loop.run_until_complete(Store.open(Path(tmp) / "scheduler.db"))
        config, _ = timed(
            "fill the store (not measured)",
            lambda: loop.run_until_complete(fill(store, n, args.inputs, args.outputs)),
        )

        async def pages(columnar: bool) -> list[bytes]:
            return [p.SerializeToString() async for p in stream_runs(store, "bench", PAGE, columnar)]

        rows, row_sched = timed("scheduler: row pages (Run)", lambda: loop.run_until_complete(pages(False)), n)
        cols, col_sched = timed("scheduler: columnar pages (RunsPage)", lambda: loop.run_until_complete(pages(True)), n)
        loop.run_until_complete(store.close())
    loop.close()
    print(f"page bytes: row {sum(map(len, rows)) / 1e6:.1f} MB, columnar {sum(map(len, cols)) / 1e6:.1f} MB")

    figures = {}
    for path, pages_, sched in (("row", rows, row_sched), ("columnar", cols, col_sched)):
        rec, to_columns = timed(f"{path}: page bytes -> columns", lambda p=pages_: records.records(config, iter(p)), n)

        def spooled(p=pages_):
            spool = table.PageSpool()
            for page in p:
                spool.write(page)
            return spool

        _, first = timed(f"{path}: spool the pages, output names", spooled, n)
        lay = spooled().layout(config)
        csv, csv_secs = timed(
            f"{path}: table CSV", lambda lay=lay: b"".join(table.csv_chunks(lay, spooled().read())), n
        )
        parquet, parquet_secs = timed(
            f"{path}: table Parquet", lambda lay=lay: b"".join(table.parquet_chunks(lay, spooled().read())), n
        )
        figures[path] = {
            "rec": rec,
            "csv": csv,
            "to_columns": to_columns + sched,
            "csv_rate": n / (sched + csv_secs),  # the table's timings include spooling the pages again
            "parquet_rate": n / (sched + parquet_secs),
            "two_pass_csv_rate": n / (2 * sched + first + csv_secs),
            "csv_mb": len(csv) / 1e6,
            "parquet_mb": len(parquet) / 1e6,
        }
    same = figures["row"]["csv"] == figures["columnar"]["csv"]
    rec = figures["columnar"]["rec"]
    matrix = np.column_stack([*rec.numeric_inputs.values(), *rec.numbers.values()])
    _, numpy_stats = timed(
        "baseline: numpy mean/std/percentiles",
        lambda: (matrix.mean(axis=0), matrix.std(axis=0), np.percentile(matrix, [1, 5, 50, 95, 99], axis=0)),
    )
    document, summ = timed("summary from columns", lambda: summary.summarize(rec))
    batch_msg = pb.Batch(batch_id="bench", name="bench", seed=1, config=config, status=pb.BATCH_STATUS_COMPLETED)
    html, report_secs = timed("report from columns and summary", lambda: report.render(batch_msg, rec, document))
    row, col = figures["row"], figures["columnar"]
    print()
    print(f"CSV identical on both paths: {same}")
    for label, key in (("runs.csv", "csv_rate"), ("runs.parquet", "parquet_rate")):
        print(
            f"{label} end to end (scheduler pages + spool + table): row {row[key]:,.0f} rows/CPU-s, "
            f"columnar {col[key]:,.0f} rows/CPU-s ({col[key] / row[key]:.1f} x)"
            + (" (target >= 50,000)" if key == "csv_rate" else "")
        )
    print(
        f"before the spool (two StreamRuns passes, as the gateway did): runs.csv row {row['two_pass_csv_rate']:,.0f}, "
        f"columnar {col['two_pass_csv_rate']:,.0f} rows/CPU-s"
    )
    print(f"sizes: CSV {col['csv_mb']:.1f} MB, Parquet {col['parquet_mb']:.1f} MB")
    for path in ("row", "columnar"):
        total = figures[path]["to_columns"] + summ
        print(f"summary end to end ({path}: scheduler pages + columns + summary): {total:.2f} CPU-s (target < 5 s)")
    print(f"summary alone {summ:.2f} CPU-s, {summ / numpy_stats:.0f} x plain numpy")
    print(f"report.html: {report_secs:.2f} CPU-s, {len(html) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

"""Benchmark: the study's answer for a synthetic finished batch (default 100,000 runs, 20 uniform inputs,
5 outputs, ~3 % early-terminated failures) as the gateway computes it from StreamRuns pages:
page bytes -> columns, the summary, the runs table as CSV and Parquet (rows/s), and the HTML report.

Baselines in the same process, so a busy machine shows in both: parsing the serialized pages (what any
StreamRuns client pays) for the table, and plain numpy statistics (mean, std, percentiles of every column)
for the summary. Targets from issue 10: summary < 5 s, table >= 50,000 rows/s. Times are printed as wall and
CPU seconds; rates and totals use CPU seconds, which a machine shared with other work distorts least.

Run: .venv/bin/python bench/bench_results.py [--runs N] [--inputs D] [--outputs K]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from google.protobuf import json_format

from lynx.common.v1 import batch_config_pb2 as cpb
from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_results import records, report, summary, table


def batch(runs: int, inputs: int, outputs: int, seed: int = 1) -> tuple[cpb.BatchConfig, list[bytes]]:
    """The batch config and its runs as serialized StreamRunsResponse pages of 1,000."""
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
    pages, page = [], pb.StreamRunsResponse()
    for i in range(runs):
        r = page.runs.add(
            job_id=f"job-{i:06d}",
            run_id=i,
            seed=1000 + i,
            attempts=1,
            execution_time_secs=1.5,
            runner_id="runner-01",
            status=pb.JOB_STATUS_FAILED if failed[i] else pb.JOB_STATUS_COMPLETED,
            termination_reason=pb.TERMINATION_REASON_EARLY_TERMINATION if failed[i] else pb.TERMINATION_REASON_EXITED,
        )
        r.finished_at.FromNanoseconds(1_700_000_000_000_000_000 + i * 10_000_000)
        if failed[i]:
            r.termination_variable, r.termination_condition = "x00", "> 2.95"
        r.parameters.extend(
            ppb.Parameter(name=n, value=ppb.ParameterValue(number=v)) for n, v in zip(names, x[i].tolist(), strict=True)
        )
        r.outputs.extend(
            ppb.Parameter(name=f"y{j}", value=ppb.ParameterValue(number=v)) for j, v in enumerate(y[i].tolist())
        )
        if len(page.runs) == 1000:
            pages.append(page.SerializeToString())
            page = pb.StreamRunsResponse()
    if len(page.runs):
        pages.append(page.SerializeToString())
    return config, pages


def timed(label: str, fn, rows: int | None = None):
    """Run fn; print wall and CPU seconds (CPU time is what a shared, busy machine distorts least) and the
    rate by CPU time. Returns (result, CPU seconds)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    secs, cpu_secs = time.perf_counter() - start, time.process_time() - cpu
    rate = f"  {rows / cpu_secs:>10,.0f} rows/CPU-s" if rows else ""
    print(f"{label:<44} {secs:8.2f} s wall {cpu_secs:8.2f} s CPU{rate}")
    return result, cpu_secs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--inputs", type=int, default=20)
    parser.add_argument("--outputs", type=int, default=5)
    args = parser.parse_args()
    n = args.runs
    print(f"{n:,} runs x {args.inputs} inputs x {args.outputs} outputs")
    (config, pages), _ = timed("generate (not measured)", lambda: batch(n, args.inputs, args.outputs))

    def chunks():
        return iter(pages)  # the wire bytes of each page, as the gateway reads StreamRuns

    _, parse = timed(
        "baseline: parse the StreamRuns pages",
        lambda: sum(len(pb.StreamRunsResponse.FromString(p).runs) for p in pages),
        n,
    )
    _, slow = timed(
        "Run messages -> columns (per Parameter)",
        lambda: records.records(config, (pb.StreamRunsResponse.FromString(p).runs for p in pages)),
        n,
    )
    rec, to_columns = timed("page bytes -> columns (lynx_results.wire)", lambda: records.records(config, chunks()), n)
    matrix = np.column_stack([*rec.numeric_inputs.values(), *rec.numbers.values()])
    _, numpy_stats = timed(
        "baseline: numpy mean/std/percentiles",
        lambda: (matrix.mean(axis=0), matrix.std(axis=0), np.percentile(matrix, [1, 5, 50, 95, 99], axis=0)),
    )
    document, summ = timed("summary from columns", lambda: summary.summarize(rec))
    lay, first_pass = timed("table: first pass (output names)", lambda: table.layout(config, chunks()), n)
    size, csv_secs = timed("table: CSV", lambda: sum(len(b) for b in table.csv_chunks(lay, chunks())), n)
    psize, parquet_secs = timed("table: Parquet", lambda: sum(len(b) for b in table.parquet_chunks(lay, chunks())), n)
    batch_msg = pb.Batch(batch_id="bench", name="bench", seed=1, config=config, status=pb.BATCH_STATUS_COMPLETED)
    html, report_secs = timed("report from columns and summary", lambda: report.render(batch_msg, rec, document))
    print()
    print(
        f"summary end to end (columns + summary): {to_columns + summ:.2f} CPU-s (target < 5 s); "
        f"{(to_columns + summ) / parse:.1f} x the page parse, summary alone {summ / numpy_stats:.0f} x plain numpy"
    )
    print(
        f"runs.csv end to end (two passes): {n / (first_pass + csv_secs):,.0f} rows/CPU-s (target >= 50,000), "
        f"{(first_pass + csv_secs) / parse:.1f} x the page parse; {size / 1e6:.1f} MB"
    )
    print(f"runs.parquet end to end: {n / (first_pass + parquet_secs):,.0f} rows/CPU-s; {psize / 1e6:.1f} MB")
    print(f"report.html: {report_secs:.2f} CPU-s, {len(html) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

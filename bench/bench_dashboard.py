"""Benchmark: the dashboard's runs table for a finished batch of 100,000 runs x 20 inputs x 5 outputs beside a
5-run one, in process: building the table from StreamRuns pages, rendering
the first page of the runs table (sorted, filtered) and the batch page's charts (convergence, histogram).

The batch page's first HTML never waits for the table (the table loads after it, over htmx); a table is built
once per finished batch and kept, so the build is paid by the first viewer only. Ratios are against the 5-run
table measured in the same process.

Run: .venv/bin/python bench/bench_dashboard.py [--runs N] [--inputs I] [--outputs O]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lynx.common.v1 import batch_config_pb2 as cpb
from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_gateway.dashboard.pages import environment
from lynx_gateway.dashboard.runs import Query, RunsTable
from lynx_results.records import RecordsBuilder, inputs_of


def messages(n: int, inputs: int, outputs: int) -> list[pb.StreamRunsResponse]:
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(n, inputs))
    pages, page = [], pb.StreamRunsResponse()
    for i in range(n):
        failed = x[i, 0] > 0.9
        run = page.runs.add(job_id=f"job-{i}", run_id=i, seed=i, attempts=1, execution_time_secs=1.5,
                            runner_id="runner-01", status=pb.JOB_STATUS_FAILED if failed else pb.JOB_STATUS_COMPLETED,
                            termination_reason=pb.TERMINATION_REASON_EARLY_TERMINATION if failed
                            else pb.TERMINATION_REASON_EXITED)
        run.finished_at.FromSeconds(1_700_000_000 + i)
        for j in range(inputs):
            run.parameters.add(name=f"x{j}", value=ppb.ParameterValue(number=x[i, j]))
        for k in range(outputs):
            run.outputs.add(name=f"y{k}", value=ppb.ParameterValue(number=x[i, k] * 2 + k))
        if len(page.runs) == 2000:
            pages.append(page)
            page = pb.StreamRunsResponse()
    pages.append(page)
    return pages


def measure(n: int, inputs: int, outputs: int) -> dict[str, float]:
    pages = [p.SerializeToString() for p in messages(n, inputs, outputs)]  # as the gateway receives them
    config = cpb.BatchConfig()
    for j in range(inputs):
        config.dispersions.add(name=f"x{j}").distribution.type = "uniform"
    t0 = time.perf_counter()
    builder = RecordsBuilder(inputs_of(config))
    for page in pages:
        builder.add_page(page)
    table = RunsTable.from_records(builder.build())
    t1 = time.perf_counter()
    q = Query(sort="out.y1", descending=True, statuses=("Completed",), ranges={"in.x2": (0.1, 0.9)})
    page = table.query(q)
    html = environment().get_template("runs_table.html").render(batch_id="b", table=table, page=page, q=q, params=[])
    t2 = time.perf_counter()
    table.convergence("y0")
    table.histogram("y0")
    t3 = time.perf_counter()
    assert len(page.rows) == 50 or n < 50, len(page.rows)
    assert html.count("<tr data-run=") == len(page.rows)
    return {"build": t1 - t0, "page": t2 - t1, "charts": t3 - t2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--inputs", type=int, default=20)
    parser.add_argument("--outputs", type=int, default=5)
    args = parser.parse_args()
    base = measure(5, args.inputs, args.outputs)
    big = measure(args.runs, args.inputs, args.outputs)
    print(f"{'step':<8} {'5 runs':>10} {f'{args.runs:,} runs':>14} {'ratio':>8}")
    for step in base:
        print(f"{step:<8} {base[step] * 1e3:>8.2f}ms {big[step] * 1e3:>12.1f}ms {big[step] / base[step]:>8.0f}x")
    print(f"{args.runs / big['build']:,.0f} runs/s into the table; one page after that: {big['page'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()

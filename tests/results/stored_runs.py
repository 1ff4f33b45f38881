"""A small batch kept in a real scheduler store (SQLite file, sample chunks, stored JobResults) with outputs of
mixed kinds and missing ones, read back through the scheduler's StreamRuns page builder as row pages and as
columnar pages."""

from __future__ import annotations

from pathlib import Path

import synthetic_runs as sr

from lynx.common.v1 import batch_config_pb2 as cpb
from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.columns import parameter_value
from lynx_scheduler.rows import BatchRow
from lynx_scheduler.runs import stream_runs
from lynx_scheduler.store import Store

NAN = float("nan")
# run_id -> (status, outputs or None for no result, extra JobResult fields)
RESULTS: dict[int, tuple[str, dict | None, dict]] = {
    0: ("Completed", {"r": 1.5, "ok": True, "name": 'hi, "there"', "a": 9.0}, {}),
    1: (
        "Failed",
        {"r": 2.5, "ok": False, "name": 3.0},
        {
            "termination_reason": pb.TERMINATION_REASON_EARLY_TERMINATION,
            "termination_variable": "alt",
            "termination_condition": "< 5",
            "termination_value": 0.0,
            "error_message": "",
            "exit_code": -9,
        },
    ),
    2: ("Pending", None, {}),
    3: ("Completed", {}, {}),  # finished without outputs
    4: ("Completed", {"r": 4, "count": 7}, {}),  # an integer where others give numbers
    5: ("Completed", {"r": NAN, "ok": False, "count": 0}, {}),
    6: ("Failed", {"r": "oops", "ok": True}, {"error_message": "exit 1", "exit_code": 1}),
    7: ("Running", None, {}),
    8: ("Completed", {"count": 3.0, "r": 6.5}, {}),  # 8-10: each run gives the same outputs, or none
    9: ("Failed", {}, {"error_message": "no summary.json", "exit_code": 2}),
    10: ("Completed", {"count": 4.0, "r": 7.5}, {}),
}
MODES = ["x", 2]


def config() -> cpb.BatchConfig:
    return sr.config(["a"], choices={"mode": MODES}, constants={"k": 1.5}, runs=len(RESULTS))


def chunk(first: int, last: int) -> ppb.RunColumns:
    """Runs first..last-1 as the sampler sends them."""
    ids = range(first, last)
    return ppb.RunColumns(
        run_ids=ids,
        seeds=[1000 + i for i in ids],
        parameters=[
            ppb.ParameterColumn(name="a", numbers=ppb.DoubleColumn(values=[0.5 * i - 1 for i in ids])),
            ppb.ParameterColumn(
                name="mode",
                choices=ppb.ChoiceColumn(levels=[parameter_value(m) for m in MODES], indices=[i % 2 for i in ids]),
            ),
            ppb.ParameterColumn(name="k", numbers=ppb.DoubleColumn(values=[1.5] * len(ids))),
        ],
    )


async def stored_batch(path: Path, batch_id: str = "b") -> Store:
    """The batch of RESULTS in a new store at `path`, in two sample chunks (runs 0-4 and 5-10)."""
    store = await Store.open(path)
    cfg = config()
    await store.insert_hidden_batch(
        BatchRow(batch_id, "t", cfg.SerializeToString(), 7, len(RESULTS), "python", "", 0, 0, False, 1.7e9, None, None)
    )
    await store.add_sample(batch_id, 0, chunk(0, 5).SerializeToString(), 5)
    await store.add_sample(batch_id, 5, chunk(5, 11).SerializeToString(), 6)
    await store.reveal_batch(batch_id, len(RESULTS))
    async with store.transaction() as tx:
        for run_id, (status, outputs, extra) in RESULTS.items():
            blob = None
            if outputs is not None:
                result = pb.JobResult(execution_time_secs=0.25 * run_id, **extra)
                result.outputs.extend(ppb.Parameter(name=k, value=parameter_value(v)) for k, v in outputs.items())
                blob = result.SerializeToString()
            await tx.db.execute(
                "UPDATE jobs SET status = ?, attempts = 1, runner_id = ?, result = ?, finished_at = ?"
                " WHERE batch_id = ? AND run_id = ?",
                (
                    status,
                    "r1" if status != "Pending" else None,
                    blob,
                    1.7e9 + run_id / 3 if blob else None,
                    batch_id,
                    run_id,
                ),
            )
    return store


async def pages(store: Store, size: int, columnar: bool, batch_id: str = "b") -> list[bytes]:
    """The batch's StreamRuns pages as their wire bytes, as the gateway reads them."""
    return [p.SerializeToString() async for p in stream_runs(store, batch_id, size, columnar)]

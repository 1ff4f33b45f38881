"""The scheduler's SQLite store: older files upgrade in place; half-submitted batches are dropped."""

from __future__ import annotations

import sqlite3
import time

from lynx_scheduler import core
from lynx_scheduler.store import Report, Store

# The schema of the first release (no ready/warnings/aborted columns, no attempts table).
FIRST_RELEASE_SCHEMA = """
CREATE TABLE batches (
    batch_id TEXT PRIMARY KEY, name TEXT NOT NULL, config BLOB NOT NULL, seed INTEGER NOT NULL,
    total_jobs INTEGER NOT NULL, engine TEXT NOT NULL, sim_type TEXT NOT NULL, max_parallel INTEGER NOT NULL,
    max_retries INTEGER NOT NULL, cancelled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
    started_at REAL, finished_at REAL
);
CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(batch_id), run_id INTEGER NOT NULL,
    parameters TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, runner_id TEXT, result BLOB, started_at REAL, finished_at REAL
);
CREATE TABLE runners (
    runner_id TEXT PRIMARY KEY, name TEXT NOT NULL, engines TEXT NOT NULL, capabilities BLOB NOT NULL,
    online INTEGER NOT NULL, last_heartbeat REAL
);
"""


def _old_file(path) -> None:
    db = sqlite3.connect(path)
    db.executescript(FIRST_RELEASE_SCHEMA)
    db.execute("INSERT INTO batches VALUES ('b1', 'old', x'', 1, 2, 'basilisk', 'basilisk', 0, 2, 0, 1.0, NULL, NULL)")
    db.executemany("INSERT INTO jobs (job_id, batch_id, run_id, parameters, status) VALUES (?, 'b1', ?, '{}', ?)",
                   [("j1", 0, core.PENDING), ("j2", 1, core.PENDING)])
    db.commit()
    db.close()


async def test_a_first_release_file_upgrades_and_its_jobs_run(tmp_path):
    _old_file(tmp_path / "scheduler.db")
    store = await Store.open(tmp_path / "scheduler.db")
    try:
        (batch, running), = await store.active_batches()
        assert (batch.batch_id, batch.aborted, batch.status_message, batch.warnings) == ("b1", False, "", [])
        assert running == 0
        assert await store.lease_many([("j1", "r1")], time.time()) == [1]
        settled = await store.settle("j1", 1, "r1", "finished", Report("failed", 1, "exited", "boom", b""),
                                     core.RetryPolicy(max_retries=0), time.time())
        assert (settled.verdict, settled.status) == ("accepted", core.FAILED)
        job = await store.get_job("j1", with_history=True)
        assert (job.runner_losses, job.reason, [a.outcome for a in job.history]) == (0, "exited", ["failed"])
        assert (await store.get_batch("b1")).failures_by_reason == {"exited": 1}
    finally:
        await store.close()


async def test_batches_whose_submission_died_are_deleted_at_start_up(tmp_path):
    store = await Store.open(tmp_path / "scheduler.db")
    try:
        await store.db.execute(
            "INSERT INTO batches (batch_id, name, config, seed, total_jobs, engine, sim_type, max_parallel,"
            " max_retries, created_at, ready) VALUES ('half', 'h', x'', 1, 3, 'basilisk', 'basilisk', 0, 2, 1.0, 0)")
        await store.db.execute(
            "INSERT INTO jobs (job_id, batch_id, run_id, parameters, status) VALUES ('h1', 'half', 0, '{}', ?)",
            (core.PENDING,))
        await store.db.commit()
        assert await store.active_batches() == []  # never leased while not ready
        assert await store.batch_jobs("half") == []  # nor listed
        assert await store.delete_unready_batches() == 1
        assert await store.get_batch("half") is None and await store.get_job("h1") is None
    finally:
        await store.close()

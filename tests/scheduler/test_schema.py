"""Schema migrations: files written before user_version was kept upgrade in place with their rows intact."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from lynx_scheduler import policy, schema
from lynx_scheduler.rows import Report
from lynx_scheduler.settlement import Ending, settle_many
from lynx_scheduler.store import Store

# The last unversioned layout (jobs keep JSON parameters; no seeds, no sample chunks), verbatim.
UNVERSIONED_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id     TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    config       BLOB NOT NULL,          -- serialized lynx.common.v1.BatchConfig
    seed         INTEGER NOT NULL,
    total_jobs   INTEGER NOT NULL,
    engine       TEXT NOT NULL,
    sim_type     TEXT NOT NULL,
    max_parallel INTEGER NOT NULL,
    max_retries  INTEGER NOT NULL,
    cancelled    INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    ready        INTEGER NOT NULL DEFAULT 1,  -- 0 while SubmitBatch is still inserting its jobs
    warnings     TEXT NOT NULL DEFAULT '[]',  -- JSON list: the sampler's caveats
    aborted      INTEGER NOT NULL DEFAULT 0,  -- 1 once the failure budget was exceeded
    status_message TEXT NOT NULL DEFAULT ''   -- why the batch was aborted
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id       TEXT PRIMARY KEY,
    batch_id     TEXT NOT NULL REFERENCES batches(batch_id),
    run_id       INTEGER NOT NULL,
    parameters   TEXT NOT NULL,          -- JSON object
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    failures     INTEGER NOT NULL DEFAULT 0,
    runner_id    TEXT,
    result       BLOB,                   -- serialized lynx.scheduler.v1.JobResult
    started_at   REAL,
    finished_at  REAL,
    runner_losses INTEGER NOT NULL DEFAULT 0,  -- attempts lost with their runner
    not_before   REAL NOT NULL DEFAULT 0,      -- a retry is not leased before this (backoff)
    reason       TEXT NOT NULL DEFAULT ''      -- termination_reason of the last result
);
CREATE INDEX IF NOT EXISTS jobs_by_batch ON jobs(batch_id, status, run_id);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, batch_id);
CREATE TABLE IF NOT EXISTS runners (
    runner_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    engines        TEXT NOT NULL,        -- JSON list
    capabilities   BLOB NOT NULL,        -- serialized RunnerCapabilities
    online         INTEGER NOT NULL,
    last_heartbeat REAL,
    heartbeat_interval REAL NOT NULL DEFAULT 2.0
);
CREATE TABLE IF NOT EXISTS attempts (
    job_id        TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    runner_id     TEXT NOT NULL,
    started_at    REAL NOT NULL,
    ended_at      REAL,
    outcome       TEXT NOT NULL DEFAULT 'running',
    exit_code     INTEGER NOT NULL DEFAULT 0,
    reason        TEXT NOT NULL DEFAULT '',
    error_message TEXT,
    reported      INTEGER NOT NULL DEFAULT 0,  -- 1 when the runner's own report ended it
    ignored_reports INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, attempt)
);
"""

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
PARAMS = {"semi_major_axis": 7000.5, "thrusters": 3, "mode": "safe"}


def _old_file(path, layout: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(layout)
    db.execute("INSERT INTO batches (batch_id, name, config, seed, total_jobs, engine, sim_type, max_parallel,"
               " max_retries, cancelled, created_at) VALUES ('b1', 'old', x'', 1, 2, 'basilisk', 'basilisk', 0, 2,"
               " 0, 1.0)")
    db.executemany("INSERT INTO jobs (job_id, batch_id, run_id, parameters, status) VALUES (?, 'b1', ?, ?, ?)",
                   [("j1", 0, json.dumps(PARAMS), policy.PENDING), ("j2", 1, "{}", policy.PENDING)])
    db.execute("INSERT INTO runners (runner_id, name, engines, capabilities, online) VALUES"
               " ('r0', 'r0', '[\"basilisk\"]', x'', 1)")
    db.commit()
    db.close()


def _version(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


@pytest.mark.parametrize("layout", [UNVERSIONED_SCHEMA, FIRST_RELEASE_SCHEMA], ids=["unversioned", "first-release"])
async def test_an_old_file_upgrades_with_its_rows_and_its_jobs_run(tmp_path, layout):
    path = tmp_path / "scheduler.db"
    _old_file(path, layout)
    store = await Store.open(path)
    try:
        assert _version(path) == schema.VERSION
        (batch, running), = await store.active_batches()
        assert (batch.batch_id, batch.name, batch.aborted, batch.status_message, batch.warnings) == (
            "b1", "old", False, "", [])
        assert running == 0
        job = await store.get_job("j1")
        assert (job.run_id, job.legacy_parameters, job.seed, job.sample_id) == (0, PARAMS, None, None)
        assert list(job.legacy_parameters) == list(PARAMS)  # the declared order survives
        assert [r.runner_id for r in await store.list_runners()] == ["r0"]
        assert await store.lease_many([("j1", "r1")], time.time()) == [1]
        ending = Ending("j1", 1, "r1", "finished", Report("failed", 1, "exited", "boom", b""),
                        policy.RetryPolicy(max_retries=0))
        (settled,) = await settle_many(store, [ending], time.time())
        assert (settled.verdict, settled.status) == ("accepted", policy.FAILED)
        job = await store.get_job("j1", with_history=True)
        assert (job.runner_losses, job.reason, [a.outcome for a in job.history]) == (0, "exited", ["failed"])
        assert (await store.get_batch("b1")).failures_by_reason == {"exited": 1}
    finally:
        await store.close()
    store = await Store.open(path)  # opening an up-to-date file again changes nothing
    try:
        assert _version(path) == schema.VERSION
        assert (await store.get_job("j2")).legacy_parameters == {}
    finally:
        await store.close()


async def test_a_new_file_starts_at_the_current_version(tmp_path):
    store = await Store.open(tmp_path / "scheduler.db")
    await store.close()
    assert _version(tmp_path / "scheduler.db") == schema.VERSION


async def test_a_file_from_a_newer_scheduler_is_refused(tmp_path):
    path = tmp_path / "scheduler.db"
    db = sqlite3.connect(path)
    db.executescript(UNVERSIONED_SCHEMA)
    db.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="schema version"):
        await Store.open(path)

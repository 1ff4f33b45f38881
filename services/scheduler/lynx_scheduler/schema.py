"""The scheduler's SQLite schema and its versioned migrations (PRAGMA user_version)."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from lynx_common.sqlite import open_database

# Version 3: an index of jobs by (batch_id, run_id) for StreamRuns. Outputs, artifacts and notes need no
# column: they travel inside the stored JobResult (jobs.result).
# Version 2: jobs point into the sample chunk (RunColumns) they came in, which holds their parameters
# and seed; running jobs have a partial index instead of an index of every job by status.
SCHEMA = """
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
CREATE TABLE IF NOT EXISTS samples (
    sample_id    INTEGER PRIMARY KEY,
    batch_id     TEXT NOT NULL,
    first_run_id INTEGER NOT NULL,
    runs         BLOB NOT NULL           -- serialized lynx.common.v1.RunColumns, as the sampler sent it
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id       TEXT PRIMARY KEY,
    batch_id     TEXT NOT NULL REFERENCES batches(batch_id),
    run_id       INTEGER NOT NULL,
    seed         INTEGER,                -- NULL: the run's seed is in its sample chunk (set only in rows
                                         -- written before version 2 with a seed, if any)
    sample_id    INTEGER,                -- samples row holding its parameters (at run_id - first_run_id)
    parameters   TEXT,                   -- JSON object: version-1 rows only
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    failures     INTEGER NOT NULL DEFAULT 0,
    runner_id    TEXT,
    result       BLOB,                   -- serialized lynx.scheduler.v1.JobResult
    started_at   REAL,
    finished_at  REAL,
    runner_losses INTEGER NOT NULL DEFAULT 0,  -- attempts lost with their runner
    not_before   REAL NOT NULL DEFAULT 0,      -- a retry is not leased before this (backoff)
    reason       TEXT NOT NULL DEFAULT ''      -- termination reason of the last result ("exited", ...)
);
CREATE INDEX IF NOT EXISTS jobs_by_batch ON jobs(batch_id, status, run_id);
-- A batch's runs in run order, page by page (StreamRuns), without sorting the batch:
CREATE INDEX IF NOT EXISTS jobs_by_run ON jobs(batch_id, run_id);
-- Running jobs only (a partial index costs nothing when pending jobs are inserted):
CREATE INDEX IF NOT EXISTS jobs_running ON jobs(runner_id) WHERE status = 'Running';
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
    outcome       TEXT NOT NULL DEFAULT 'running',  -- AttemptOutcome's REST name
    exit_code     INTEGER NOT NULL DEFAULT 0,
    reason        TEXT NOT NULL DEFAULT '',         -- TerminationReason's REST name
    error_message TEXT,
    reported      INTEGER NOT NULL DEFAULT 0,  -- 1 when the runner's own report ended it
    ignored_reports INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, attempt)
);
"""
VERSION = 3

# Columns the unversioned files (before user_version was kept) may lack: (table, column, declaration).
_UNVERSIONED_ADDITIONS = (
    ("batches", "ready", "INTEGER NOT NULL DEFAULT 1"),
    ("batches", "warnings", "TEXT NOT NULL DEFAULT '[]'"),
    ("batches", "aborted", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "status_message", "TEXT NOT NULL DEFAULT ''"),
    ("jobs", "runner_losses", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "not_before", "REAL NOT NULL DEFAULT 0"),
    ("jobs", "reason", "TEXT NOT NULL DEFAULT ''"),
    ("runners", "heartbeat_interval", "REAL NOT NULL DEFAULT 2.0"),
)

_V1_JOB_COLUMNS = (
    "job_id, batch_id, run_id, parameters, status, attempts, failures, runner_id, result, started_at,"
    " finished_at, runner_losses, not_before, reason"
)


async def _to_v1(db: aiosqlite.Connection) -> None:
    """Unversioned files (the first release onward) get every column and table of version 1."""
    for table, column, declaration in _UNVERSIONED_ADDITIONS:
        existing = {row[1] for row in await db.execute_fetchall(f"PRAGMA table_info({table})")}
        if column not in existing:
            await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


async def _to_v2(db: aiosqlite.Connection) -> None:
    """Jobs gain seed and sample_id, and parameters may be NULL: the table is rebuilt, rows kept."""
    await db.execute("ALTER TABLE jobs RENAME TO jobs_v1")
    await db.execute("DROP INDEX IF EXISTS jobs_by_batch")
    await db.execute("DROP INDEX IF EXISTS jobs_by_status")
    await _create_all(db)  # the new jobs table, its indexes, the samples table
    await db.execute(f"INSERT INTO jobs ({_V1_JOB_COLUMNS}) SELECT {_V1_JOB_COLUMNS} FROM jobs_v1")
    await db.execute("DROP TABLE jobs_v1")


async def _create_all(db: aiosqlite.Connection) -> None:
    """SCHEMA statement by statement (executescript would commit the migration half-way)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            await db.execute(statement)


async def _to_v3(db: aiosqlite.Connection) -> None:
    """Jobs gain the index StreamRuns pages through (batch_id, run_id)."""
    await db.execute("CREATE INDEX IF NOT EXISTS jobs_by_run ON jobs(batch_id, run_id)")


MIGRATIONS = {1: _to_v1, 2: _to_v2, 3: _to_v3}  # version -> the step that reaches it from the one before


async def _has_tables(db: aiosqlite.Connection) -> bool:
    rows = await db.execute_fetchall("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batches'")
    return bool(rows)


async def open_store_database(path: str | Path) -> aiosqlite.Connection:
    """Open (creating if needed) the scheduler's database at `path`, migrated to VERSION."""
    db = await aiosqlite.connect(str(path))
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    version = (await db.execute_fetchall("PRAGMA user_version"))[0][0]
    if version == 0 and not await _has_tables(db):
        version = VERSION  # a new file: the current schema, nothing to migrate
    elif version > VERSION:
        await db.close()
        raise RuntimeError(f"{path} has schema version {version}; this scheduler knows up to {VERSION}")
    await db.commit()
    await db.execute("BEGIN")
    try:
        for step in range(version + 1, VERSION + 1):
            await MIGRATIONS[step](db)
        await db.execute(f"PRAGMA user_version = {VERSION}")
        await db.commit()
    except BaseException:
        await db.rollback()
        await db.close()
        raise
    await db.close()
    return await open_database(path, SCHEMA)

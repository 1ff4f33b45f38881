"""SQLite store of batches, jobs and runners (aiosqlite, WAL); the scheduler's one narrow storage interface."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite
from lynx_common.sqlite import open_database
from lynx_scheduler.core import CANCELLED, JOB_STATUSES, PENDING, RUNNING, TERMINAL

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
    warnings     TEXT NOT NULL DEFAULT '[]'   -- JSON list: the sampler's caveats
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
    finished_at  REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_batch ON jobs(batch_id, status, run_id);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, batch_id);
CREATE TABLE IF NOT EXISTS runners (
    runner_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    engines        TEXT NOT NULL,        -- JSON list
    capabilities   BLOB NOT NULL,        -- serialized RunnerCapabilities
    online         INTEGER NOT NULL,
    last_heartbeat REAL
);
"""


@dataclass
class BatchRow:
    batch_id: str
    name: str
    config: bytes
    seed: int
    total_jobs: int
    engine: str
    sim_type: str
    max_parallel: int
    max_retries: int
    cancelled: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class JobRow:
    job_id: str
    batch_id: str
    run_id: int
    parameters: dict
    status: str
    attempts: int
    failures: int
    runner_id: str | None
    result: bytes | None
    started_at: float | None
    finished_at: float | None


@dataclass
class RunnerRow:
    runner_id: str
    name: str
    engines: list[str]
    capabilities: bytes
    online: bool
    last_heartbeat: float | None
    running_jobs: int = 0


_JOB_COLS = (
    "job_id, batch_id, run_id, parameters, status, attempts, failures, runner_id, result,"
    " started_at, finished_at"
)
_BATCH_COLS = (
    "batch_id, name, config, seed, total_jobs, engine, sim_type, max_parallel, max_retries, cancelled,"
    " created_at, started_at, finished_at"
)


def _job(row) -> JobRow:
    return JobRow(*row[:3], json.loads(row[3]), *row[4:])


def _batch(row) -> BatchRow:
    return BatchRow(*row[:9], bool(row[9]), *row[10:])


# Columns added after the first release: (table, column, declaration). Older files get them on open.
ADDED_COLUMNS = (
    ("batches", "ready", "INTEGER NOT NULL DEFAULT 1"),
    ("batches", "warnings", "TEXT NOT NULL DEFAULT '[]'"),
)


async def _add_missing_columns(db: aiosqlite.Connection) -> None:
    for table, column, declaration in ADDED_COLUMNS:
        async with db.execute(f"PRAGMA table_info({table})") as cur:
            existing = {row[1] for row in await cur.fetchall()}
        if column not in existing:
            await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    await db.commit()


class Store:
    """All scheduler state in one SQLite file; every method is one transaction."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) the database at `path`, upgrading an older schema."""
        db = await open_database(path, SCHEMA)
        await _add_missing_columns(db)
        return cls(db)

    async def close(self) -> None:
        await self.db.close()

    async def insert_batch(self, batch: BatchRow, jobs: list[tuple[str, int, dict]]) -> None:
        """Insert a batch and its pending jobs (job_id, run_id, parameters) atomically."""
        await self.db.execute(
            f"INSERT INTO batches ({_BATCH_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                batch.batch_id, batch.name, batch.config, batch.seed, batch.total_jobs,
                batch.engine, batch.sim_type, batch.max_parallel, batch.max_retries, int(batch.cancelled),
                batch.created_at, None, None,
            ),
        )
        await self.db.executemany(
            "INSERT INTO jobs (job_id, batch_id, run_id, parameters, status) VALUES (?,?,?,?,?)",
            ((jid, batch.batch_id, rid, json.dumps(p), PENDING) for jid, rid, p in jobs),
        )
        await self.db.commit()

    async def get_batch(self, batch_id: str, with_counts: bool = True) -> BatchRow | None:
        """The batch (with its job counts by status unless with_counts is False), or None."""
        async with self.db.execute(
            f"SELECT {_BATCH_COLS} FROM batches WHERE batch_id = ?", (batch_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        batch = _batch(row)
        if with_counts:
            batch.counts = await self._counts(batch_id)
        return batch

    async def _counts(self, batch_id: str) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        async with self.db.execute(
            "SELECT status, COUNT(*) FROM jobs WHERE batch_id = ? GROUP BY status", (batch_id,)
        ) as cur:
            for status, n in await cur.fetchall():
                counts[status] = n
        return counts

    async def list_batches(self, limit: int) -> list[BatchRow]:
        """Newest batches first, with counts."""
        async with self.db.execute(
            f"SELECT {_BATCH_COLS} FROM batches WHERE ready = 1 ORDER BY created_at DESC LIMIT ?", (limit,)
        ) as cur:
            batches = [_batch(r) for r in await cur.fetchall()]
        for b in batches:
            b.counts = await self._counts(b.batch_id)
        return batches

    async def active_batches(self) -> list[BatchRow]:
        """Batches with pending jobs, oldest first (the dispatch order)."""
        async with self.db.execute(
            f"SELECT {_BATCH_COLS} FROM batches b WHERE cancelled = 0 AND ready = 1 AND EXISTS"
            " (SELECT 1 FROM jobs j WHERE j.batch_id = b.batch_id AND j.status = ?)"
            " ORDER BY created_at",
            (PENDING,),
        ) as cur:
            return [_batch(r) for r in await cur.fetchall()]

    async def running_count(self, batch_id: str) -> int:
        async with self.db.execute(
            "SELECT COUNT(*) FROM jobs WHERE batch_id = ? AND status = ?", (batch_id, RUNNING)
        ) as cur:
            return (await cur.fetchone())[0]

    async def pending_jobs(self, batch_id: str, limit: int) -> list[JobRow]:
        async with self.db.execute(
            f"SELECT {_JOB_COLS} FROM jobs WHERE batch_id = ? AND status = ?"
            " ORDER BY run_id LIMIT ?",
            (batch_id, PENDING, limit),
        ) as cur:
            return [_job(r) for r in await cur.fetchall()]

    async def lease(self, job_id: str, runner_id: str, now: float) -> int:
        """Mark a pending job running on `runner_id`; returns the new attempt number."""
        await self.db.execute(
            "UPDATE jobs SET status = ?, attempts = attempts + 1, runner_id = ?, started_at = ?"
            " WHERE job_id = ? AND status = ?",
            (RUNNING, runner_id, now, job_id, PENDING),
        )
        await self.db.execute(
            "UPDATE batches SET started_at = COALESCE(started_at, ?)"
            " WHERE batch_id = (SELECT batch_id FROM jobs WHERE job_id = ?)",
            (now, job_id),
        )
        await self.db.commit()
        job = await self.get_job(job_id)
        return job.attempts

    async def get_job(self, job_id: str) -> JobRow | None:
        async with self.db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE job_id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return _job(row) if row else None

    async def batch_jobs(self, batch_id: str, statuses: tuple[str, ...] = JOB_STATUSES) -> list[JobRow]:
        marks = ",".join("?" * len(statuses))
        async with self.db.execute(
            f"SELECT {_JOB_COLS} FROM jobs WHERE batch_id = ? AND status IN ({marks}) ORDER BY run_id",
            (batch_id, *statuses),
        ) as cur:
            return [_job(r) for r in await cur.fetchall()]

    async def finish_attempt(
        self, job_id: str, status: str, result: bytes, failed: bool, now: float
    ) -> None:
        """Record an attempt's result and the job's next status; stamp the batch when it ends."""
        await self.db.execute(
            "UPDATE jobs SET status = ?, result = ?, failures = failures + ?,"
            " finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE job_id = ?",
            (status, result, int(failed), status in TERMINAL, now, job_id),
        )
        await self._stamp_finished(job_id, now)
        await self.db.commit()

    async def requeue(self, job_ids: list[str]) -> None:
        """Put running jobs back to pending without charging their retry budget (runner lost)."""
        await self.db.executemany(
            "UPDATE jobs SET status = ? WHERE job_id = ? AND status = ?",
            ((PENDING, j, RUNNING) for j in job_ids),
        )
        await self.db.commit()

    async def requeue_all_running(self) -> int:
        """At start-up: no runner holds a lease yet, so every running job is pending again."""
        cur = await self.db.execute("UPDATE jobs SET status = ? WHERE status = ?", (PENDING, RUNNING))
        await self.db.commit()
        return cur.rowcount

    async def cancel_batch(self, batch_id: str, now: float, result_for) -> list[JobRow]:
        """Flag the batch cancelled, cancel its pending jobs (result_for(job_id) is their final
        result); returns its running jobs."""
        await self.db.execute("UPDATE batches SET cancelled = 1 WHERE batch_id = ?", (batch_id,))
        async with self.db.execute(
            "SELECT job_id FROM jobs WHERE batch_id = ? AND status = ?", (batch_id, PENDING)
        ) as cur:
            pending = [r[0] for r in await cur.fetchall()]
        await self.db.executemany(
            "UPDATE jobs SET status = ?, result = ?, finished_at = ? WHERE job_id = ? AND status = ?",
            ((CANCELLED, result_for(j), now, j, PENDING) for j in pending),
        )
        await self.db.execute(
            "UPDATE batches SET finished_at = ? WHERE batch_id = ? AND NOT EXISTS"
            " (SELECT 1 FROM jobs WHERE batch_id = ? AND status = ?)",
            (now, batch_id, batch_id, RUNNING),
        )
        await self.db.commit()
        return await self.batch_jobs(batch_id, (RUNNING,))

    async def _stamp_finished(self, job_id: str, now: float) -> None:
        marks = ",".join("?" * len(TERMINAL))
        await self.db.execute(
            "UPDATE batches SET finished_at = ? WHERE batch_id = (SELECT batch_id FROM jobs WHERE job_id = ?)"
            f" AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = batches.batch_id AND status NOT IN ({marks}))",
            (now, job_id, *TERMINAL),
        )

    async def upsert_runner(self, runner: RunnerRow) -> None:
        await self.db.execute(
            "INSERT INTO runners (runner_id, name, engines, capabilities, online, last_heartbeat)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT(runner_id) DO UPDATE SET name = excluded.name,"
            " engines = excluded.engines, capabilities = excluded.capabilities,"
            " online = excluded.online, last_heartbeat = excluded.last_heartbeat",
            (
                runner.runner_id, runner.name, json.dumps(runner.engines), runner.capabilities,
                int(runner.online), runner.last_heartbeat,
            ),
        )
        await self.db.commit()

    async def set_runner_online(self, runner_id: str, online: bool, heartbeat: float | None = None) -> None:
        await self.db.execute(
            "UPDATE runners SET online = ?, last_heartbeat = COALESCE(?, last_heartbeat) WHERE runner_id = ?",
            (int(online), heartbeat, runner_id),
        )
        await self.db.commit()

    async def mark_all_runners_offline(self) -> None:
        await self.db.execute("UPDATE runners SET online = 0")
        await self.db.commit()

    async def list_runners(self, runner_id: str | None = None) -> list[RunnerRow]:
        where, args = ("WHERE r.runner_id = ?", (runner_id,)) if runner_id else ("", ())
        async with self.db.execute(
            "SELECT r.runner_id, r.name, r.engines, r.capabilities, r.online, r.last_heartbeat,"
            " (SELECT COUNT(*) FROM jobs j WHERE j.runner_id = r.runner_id AND j.status = ?)"
            f" FROM runners r {where} ORDER BY r.runner_id",
            (RUNNING, *args),
        ) as cur:
            rows = await cur.fetchall()
        return [RunnerRow(r[0], r[1], json.loads(r[2]), r[3], bool(r[4]), r[5], r[6]) for r in rows]

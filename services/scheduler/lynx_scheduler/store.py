"""SQLite store of batches, jobs and runners (aiosqlite, WAL); the scheduler's one narrow storage interface."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.sqlite import open_database
from lynx_scheduler import core
from lynx_scheduler.core import CANCELLED, FAILED, JOB_STATUSES, PENDING, RUNNING, TERMINAL

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
    aborted: bool = False
    status_message: str = ""
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    failures_by_reason: dict[str, int] = field(default_factory=dict)


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
    runner_losses: int = 0
    not_before: float = 0.0
    reason: str = ""
    history: list[AttemptRow] = field(default_factory=list)


@dataclass
class AttemptRow:
    job_id: str
    attempt: int
    runner_id: str
    started_at: float
    ended_at: float | None
    outcome: str
    exit_code: int
    reason: str
    error_message: str | None
    reported: bool
    ignored_reports: int


@dataclass
class RunnerRow:
    runner_id: str
    name: str
    engines: list[str]
    capabilities: bytes
    online: bool
    last_heartbeat: float | None
    running_jobs: int = 0
    heartbeat_interval: float = 2.0


_JOB_COLS = (
    "job_id, batch_id, run_id, parameters, status, attempts, failures, runner_id, result,"
    " started_at, finished_at, runner_losses, not_before, reason"
)
_BATCH_COLS = (
    "batch_id, name, config, seed, total_jobs, engine, sim_type, max_parallel, max_retries, cancelled,"
    " created_at, started_at, finished_at, aborted, status_message, warnings"
)
_ATTEMPT_COLS = (
    "job_id, attempt, runner_id, started_at, ended_at, outcome, exit_code, reason, error_message,"
    " reported, ignored_reports"
)


def _job(row) -> JobRow:
    return JobRow(*row[:3], json.loads(row[3]), *row[4:])


def _batch(row) -> BatchRow:
    warnings = json.loads(row[15]) if row[15] else []
    return BatchRow(*row[:9], bool(row[9]), *row[10:13], bool(row[13]), row[14] or "", warnings)


def _attempt(row) -> AttemptRow:
    return AttemptRow(*row[:9], bool(row[9]), row[10])


@dataclass(frozen=True)
class Report:
    """One attempt's end as the scheduler records it."""

    outcome: str  # completed, failed, cancelled, released, runner_lost
    exit_code: int = 0
    reason: str = ""
    error_message: str | None = None
    result: bytes | None = None  # the job's new result, if this attempt gives one
    reported: bool = True  # ended by the runner's report (False: by the scheduler)


@dataclass(frozen=True)
class Ending:
    """One attempt to end: which, who says so, how, and the batch's retry policy."""

    job_id: str
    attempt: int
    runner_id: str | None
    kind: str  # finished, released, lost, cancelled
    report: Report
    policy: core.RetryPolicy


@dataclass
class Settled:
    """What settle() did: 'accepted', 'duplicate' (already accepted), 'stale' or 'unknown'."""

    verdict: str
    job: JobRow | None = None
    status: str = ""
    aborted_now: bool = False


# Columns added after the first release: (table, column, declaration). Older files get them on open.
ADDED_COLUMNS = (
    ("batches", "ready", "INTEGER NOT NULL DEFAULT 1"),
    ("batches", "warnings", "TEXT NOT NULL DEFAULT '[]'"),
    ("batches", "aborted", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "status_message", "TEXT NOT NULL DEFAULT ''"),
    ("jobs", "runner_losses", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "not_before", "REAL NOT NULL DEFAULT 0"),
    ("jobs", "reason", "TEXT NOT NULL DEFAULT ''"),
    ("runners", "heartbeat_interval", "REAL NOT NULL DEFAULT 2.0"),
)


async def _add_missing_columns(db: aiosqlite.Connection) -> None:
    for table, column, declaration in ADDED_COLUMNS:
        rows = await db.execute_fetchall(f"PRAGMA table_info({table})")
        existing = {row[1] for row in rows}
        if column not in existing:
            await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    await db.commit()


_INSERT_JOB = "INSERT INTO jobs (job_id, batch_id, run_id, parameters, status) VALUES (?,?,?,?,?)"


def _new_jobs(batch_id: str, runs: list[tuple[int, dict]]):
    for run_id, params in runs:
        yield (str(uuid.uuid4()), batch_id, run_id, json.dumps(params), PENDING)


class Store:
    """All scheduler state in one SQLite file; every method is one transaction.

    An asyncio lock serialises the read-modify-write methods, since every coroutine shares one
    aiosqlite connection (and so one transaction).
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self.lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) the database at `path`, upgrading an older schema."""
        db = await open_database(path, SCHEMA)
        await _add_missing_columns(db)
        return cls(db)

    async def close(self) -> None:
        await self.db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the lock for one transaction: commit on success, roll back on error."""
        async with self.lock:
            try:
                yield self.db
            except BaseException:
                await self.db.rollback()
                raise
            await self.db.commit()

    # ---- batches -------------------------------------------------------------------------

    async def insert_hidden_batch(self, batch: BatchRow) -> None:
        """Insert a batch with ready = 0: listings and dispatch ignore it until reveal_batch()."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO batches (batch_id, name, config, seed, total_jobs, engine, sim_type, max_parallel,"
                " max_retries, cancelled, created_at, ready, warnings) VALUES (?,?,?,?,?,?,?,?,?,?,?,0,?)",
                (
                    batch.batch_id, batch.name, batch.config, batch.seed, batch.total_jobs,
                    batch.engine, batch.sim_type, batch.max_parallel, batch.max_retries, int(batch.cancelled),
                    batch.created_at, json.dumps(batch.warnings),
                ),
            )

    async def add_jobs(self, batch_id: str, runs: list[tuple[int, dict]]) -> None:
        """Insert pending jobs (run_id, parameters) of a batch in one short transaction."""
        async with self.transaction() as db:
            await db.executemany(_INSERT_JOB, _new_jobs(batch_id, runs))

    async def reveal_batch(self, batch_id: str, total_jobs: int) -> None:
        """A submission finished inserting its jobs: the batch becomes visible and leasable."""
        async with self.transaction() as db:
            await db.execute("UPDATE batches SET ready = 1, total_jobs = ? WHERE batch_id = ?", (total_jobs, batch_id))

    async def discard_unready_batch(self, batch_id: str) -> None:
        """Remove a submission that did not complete (a batch still ready = 0) and its jobs."""
        async with self.transaction() as db:
            await db.execute(
                "DELETE FROM jobs WHERE batch_id = (SELECT batch_id FROM batches WHERE batch_id = ? AND ready = 0)",
                (batch_id,),
            )
            await db.execute("DELETE FROM batches WHERE batch_id = ? AND ready = 0", (batch_id,))

    async def extend_batch(self, batch_id: str, runs: list[tuple[int, dict]]) -> None:
        """Add pending jobs to a batch and open it again, atomically."""
        async with self.transaction() as db:
            await db.executemany(_INSERT_JOB, _new_jobs(batch_id, runs))
            await db.execute(
                "UPDATE batches SET total_jobs = total_jobs + ?, finished_at = NULL WHERE batch_id = ?",
                (len(runs), batch_id),
            )

    async def next_run_id(self, batch_id: str) -> int:
        """The run id after the batch's last one (its run count)."""
        rows = await self.db.execute_fetchall(
            "SELECT COALESCE(MAX(run_id) + 1, 0) FROM jobs WHERE batch_id = ?", (batch_id,)
        )
        return rows[0][0]

    async def delete_unready_batches(self) -> int:
        """At start-up: batches whose submission died half-way (ready = 0) go, with their jobs."""
        async with self.transaction() as db:
            await db.execute(
                "DELETE FROM attempts WHERE job_id IN (SELECT job_id FROM jobs WHERE batch_id IN"
                " (SELECT batch_id FROM batches WHERE ready = 0))"
            )
            await db.execute("DELETE FROM jobs WHERE batch_id IN (SELECT batch_id FROM batches WHERE ready = 0)")
            cur = await db.execute("DELETE FROM batches WHERE ready = 0")
            return cur.rowcount

    async def get_batch(self, batch_id: str, with_counts: bool = True) -> BatchRow | None:
        """The batch (with its job counts by status unless with_counts is False), or None."""
        rows = await self.db.execute_fetchall(
            f"SELECT {_BATCH_COLS} FROM batches WHERE batch_id = ?", (batch_id,)
        )
        row = rows[0] if rows else None
        if row is None:
            return None
        batch = _batch(row)
        if with_counts:
            await self._fill_counts([batch])
        return batch

    async def _fill_counts(self, batches: list[BatchRow]) -> None:
        """Job counts by status and failures by reason, in two grouped queries for all `batches`."""
        if not batches:
            return
        by_id = {b.batch_id: b for b in batches}
        for b in batches:
            b.counts = dict.fromkeys(JOB_STATUSES, 0)
            b.failures_by_reason = {}
        marks = ",".join("?" * len(by_id))
        rows = await self.db.execute_fetchall(
            f"SELECT batch_id, status, COUNT(*) FROM jobs WHERE batch_id IN ({marks}) GROUP BY batch_id, status",
            tuple(by_id),
        )
        for batch_id, status, n in rows:
            by_id[batch_id].counts[status] = n
        rows = await self.db.execute_fetchall(
            f"SELECT batch_id, reason, COUNT(*) FROM jobs WHERE batch_id IN ({marks}) AND status = ?"
            " GROUP BY batch_id, reason",
            (*by_id, FAILED),
        )
        for batch_id, reason, n in rows:
            by_id[batch_id].failures_by_reason[reason or "unknown"] = n

    async def list_batches(self, limit: int) -> list[BatchRow]:
        """Newest batches first, with counts."""
        rows = await self.db.execute_fetchall(
            f"SELECT {_BATCH_COLS} FROM batches WHERE ready = 1 ORDER BY created_at DESC LIMIT ?", (limit,)
        )
        batches = [_batch(r) for r in rows]
        await self._fill_counts(batches)
        return batches

    async def active_batches(self) -> list[tuple[BatchRow, int]]:
        """(batch, running jobs) for ready batches that are neither cancelled nor aborted and have
        pending jobs, oldest first."""
        rows = await self.db.execute_fetchall(
            f"SELECT {_BATCH_COLS}, (SELECT COUNT(*) FROM jobs r WHERE r.batch_id = b.batch_id AND r.status = ?)"
            " FROM batches b WHERE cancelled = 0 AND aborted = 0 AND ready = 1 AND EXISTS"
            " (SELECT 1 FROM jobs j WHERE j.batch_id = b.batch_id AND j.status = ?)"
            " ORDER BY created_at",
            (RUNNING, PENDING),
        )
        return [(_batch(r[:-1]), r[-1]) for r in rows]

    async def pending_jobs(self, batch_id: str, limit: int, now: float | None = None) -> list[JobRow]:
        """Pending jobs in run order whose backoff has passed at `now` (all of them when None)."""
        due = float("inf") if now is None else now
        rows = await self.db.execute_fetchall(
            f"SELECT {_JOB_COLS} FROM jobs WHERE batch_id = ? AND status = ? AND not_before <= ?"
            " ORDER BY run_id LIMIT ?",
            (batch_id, PENDING, due, limit),
        )
        return [_job(r) for r in rows]

    async def next_not_before(self, batch_id: str, now: float) -> float | None:
        """When the batch's next backed-off pending job becomes due, if any."""
        rows = await self.db.execute_fetchall(
            "SELECT MIN(not_before) FROM jobs WHERE batch_id = ? AND status = ? AND not_before > ?",
            (batch_id, PENDING, now),
        )
        return rows[0][0]

    # ---- leases and attempts ----------------------------------------------------------------

    async def lease(self, job_id: str, runner_id: str, now: float) -> int:
        """Mark a pending job running on `runner_id`; returns the new attempt number (0 if not pending)."""
        return (await self.lease_many([(job_id, runner_id)], now))[0]

    async def lease_many(self, assignments: Iterable[tuple[str, str]], now: float) -> list[int]:
        """Lease pending jobs [(job_id, runner_id)] in one transaction; each gets a new attempt
        row. Returns the attempt numbers (0 for a job that was no longer pending)."""
        assignments = list(assignments)
        if not assignments:
            return []
        job_ids = [job_id for job_id, _ in assignments]
        async with self.transaction() as db:
            marks = ",".join("?" * len(job_ids))
            rows = await db.execute_fetchall(
                f"SELECT job_id, attempts, batch_id FROM jobs WHERE job_id IN ({marks}) AND status = ?",
                (*job_ids, PENDING),
            )
            pending = {r[0]: (r[1] + 1, r[2]) for r in rows}
            leased = [(job_id, runner_id) for job_id, runner_id in assignments if job_id in pending]
            await db.executemany(
                "UPDATE jobs SET status = ?, attempts = ?, runner_id = ?, started_at = ? WHERE job_id = ?",
                ((RUNNING, pending[j][0], r, now, j) for j, r in leased),
            )
            await db.executemany(
                "INSERT OR REPLACE INTO attempts (job_id, attempt, runner_id, started_at) VALUES (?,?,?,?)",
                ((j, pending[j][0], r, now) for j, r in leased),
            )
            await db.executemany(
                "UPDATE batches SET started_at = ? WHERE batch_id = ? AND started_at IS NULL",
                ((now, batch_id) for batch_id in {b for _, b in pending.values()}),
            )
        return [pending[j][0] if j in pending else 0 for j in job_ids]

    async def get_job(self, job_id: str, with_history: bool = False) -> JobRow | None:
        rows = await self.db.execute_fetchall(f"SELECT {_JOB_COLS} FROM jobs WHERE job_id = ?", (job_id,))
        row = rows[0] if rows else None
        if row is None:
            return None
        job = _job(row)
        if with_history:
            job.history = await self.attempts_of(job_id)
        return job

    async def attempts_of(self, job_id: str) -> list[AttemptRow]:
        """Every attempt of a job, oldest first."""
        rows = await self.db.execute_fetchall(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE job_id = ? ORDER BY attempt", (job_id,)
        )
        return [_attempt(r) for r in rows]

    async def _attempt_row(self, job_id: str, attempt: int) -> AttemptRow | None:
        rows = await self.db.execute_fetchall(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE job_id = ? AND attempt = ?", (job_id, attempt)
        )
        row = rows[0] if rows else None
        return _attempt(row) if row else None

    async def batch_jobs(
        self, batch_id: str, statuses: tuple[str, ...] = JOB_STATUSES, with_history: bool = False
    ) -> list[JobRow]:
        """A ready batch's jobs with the given statuses, in run order (none while it is not ready);
        with_history also loads every job's attempts, in one more query."""
        marks = ",".join("?" * len(statuses))
        rows = await self.db.execute_fetchall(
            f"SELECT {_JOB_COLS} FROM jobs WHERE batch_id = ? AND status IN ({marks})"
            " AND EXISTS (SELECT 1 FROM batches WHERE batch_id = jobs.batch_id AND ready = 1) ORDER BY run_id",
            (batch_id, *statuses),
        )
        jobs = [_job(r) for r in rows]
        if with_history and jobs:
            by_id = {j.job_id: j for j in jobs}
            cols = ", ".join(f"a.{c.strip()}" for c in _ATTEMPT_COLS.split(","))
            attempts = await self.db.execute_fetchall(
                f"SELECT {cols} FROM attempts a JOIN jobs j ON j.job_id = a.job_id WHERE j.batch_id = ?"
                " ORDER BY a.job_id, a.attempt",
                (batch_id,),
            )
            for row in attempts:
                if row[0] in by_id:
                    by_id[row[0]].history.append(_attempt(row))
        return jobs

    async def running_leases(self) -> list[tuple[str, int, str, str]]:
        """(job_id, attempt, runner_id, batch_id) of every running job: the leases a restart reconciles."""
        rows = await self.db.execute_fetchall(
            "SELECT job_id, attempts, runner_id, batch_id FROM jobs WHERE status = ?", (RUNNING,)
        )
        return [tuple(r) for r in rows]

    async def settle(
        self,
        job_id: str,
        attempt: int,
        runner_id: str | None,
        kind: str,
        report: Report,
        policy: core.RetryPolicy,
        now: float,
    ) -> Settled:
        """End one attempt exactly once (see settle_many)."""
        return (await self.settle_many([Ending(job_id, attempt, runner_id, kind, report, policy)], now))[0]

    async def settle_many(self, endings: list[Ending], now: float) -> list[Settled]:
        """End attempts, each exactly once, and move their jobs on, in one transaction.

        An Ending's `kind` is "finished" (the runner's JobFinished; report.reason/exit_code/result
        set), "released" (JobReleased), "lost" (its runner went silent) or "cancelled" (the
        scheduler cancelled a job nobody runs); `runner_id` is the reporting runner (None for the
        scheduler itself). A report of an attempt that already ended is counted in
        ignored_reports and changes nothing: the verdict is "duplicate" when that attempt was
        ended by a report (the runner may forget it), else "stale"; "unknown" when there is no
        such attempt of that runner.
        """
        async with self.transaction() as db:
            job_ids = sorted({e.job_id for e in endings})
            jobs = await self._jobs_by_id(job_ids)
            attempts = await self._attempts_by_key(job_ids)
            batches: dict[str, BatchRow] = {}
            for job in jobs.values():
                if job.batch_id not in batches:
                    batches[job.batch_id] = await self.get_batch(job.batch_id, with_counts=False)
            out, ended, moved, ignored = [], [], [], []
            failed: dict[str, core.RetryPolicy] = {}
            finished_batches: set[str] = set()
            for e in endings:
                job, att = jobs.get(e.job_id), attempts.get((e.job_id, e.attempt))
                if job is None or att is None or (e.runner_id is not None and att.runner_id != e.runner_id):
                    out.append(Settled("unknown", job))
                    continue
                if not (att.outcome == "running" and job.status == RUNNING and job.attempts == e.attempt):
                    if e.report.reported:  # a runner's report, not the scheduler's own ending
                        ignored.append((e.job_id, e.attempt))
                        att.ignored_reports += 1
                    verdict = "duplicate" if att.reported and e.kind in ("finished", "released") else "stale"
                    out.append(Settled(verdict, job, job.status))
                    continue
                batch = batches[job.batch_id]
                decision, row = _ending_rows(e, job, batch, now)
                ended.append(row[0])
                moved.append(row[1])
                att.outcome, att.reported = e.report.outcome, e.report.reported
                job.status, job.not_before = decision.status, now + decision.delay
                job.failures += int(decision.charge)
                job.runner_losses += int(decision.lost)
                if decision.status == FAILED and not (batch.cancelled or batch.aborted):
                    failed[batch.batch_id] = e.policy
                if decision.status in TERMINAL:
                    finished_batches.add(batch.batch_id)
                out.append(Settled("accepted", job, decision.status))
            if ignored:
                await db.executemany(
                    "UPDATE attempts SET ignored_reports = ignored_reports + 1 WHERE job_id = ? AND attempt = ?",
                    ignored,
                )
            if not ended:
                return out
            await db.executemany(
                "UPDATE attempts SET ended_at = ?, outcome = ?, exit_code = ?, reason = ?, error_message = ?,"
                " reported = ? WHERE job_id = ? AND attempt = ?",
                ended,
            )
            await db.executemany(
                "UPDATE jobs SET status = ?, result = COALESCE(?, result), failures = failures + ?,"
                " runner_losses = runner_losses + ?, not_before = ?, reason = CASE WHEN ? THEN ? ELSE reason END,"
                " finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE job_id = ?",
                moved,
            )
            aborted = set()
            for batch_id, policy in failed.items():
                if await self._apply_budget(batches[batch_id], policy, now):
                    aborted.add(batch_id)
            for batch_id in finished_batches:
                await self._stamp_finished(batch_id, now)
        for settled in out:
            if settled.verdict == "accepted" and settled.job.batch_id in aborted:
                settled.aborted_now = True
                aborted.discard(settled.job.batch_id)  # one caller acts on the abort
        return out

    async def _jobs_by_id(self, job_ids: list[str]) -> dict[str, JobRow]:
        marks = ",".join("?" * len(job_ids))
        rows = await self.db.execute_fetchall(f"SELECT {_JOB_COLS} FROM jobs WHERE job_id IN ({marks})", job_ids)
        return {r[0]: _job(r) for r in rows}

    async def _attempts_by_key(self, job_ids: list[str]) -> dict[tuple[str, int], AttemptRow]:
        marks = ",".join("?" * len(job_ids))
        rows = await self.db.execute_fetchall(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE job_id IN ({marks})", job_ids
        )
        return {(r[0], r[1]): _attempt(r) for r in rows}

    async def _apply_budget(self, batch: BatchRow, policy: core.RetryPolicy, now: float) -> bool:
        """Abort the batch when its failed jobs exceed compute.max_failed_jobs (inside a transaction)."""
        if policy.max_failed_jobs is None:
            return False
        rows = await self.db.execute_fetchall(
            "SELECT COUNT(*) FROM jobs WHERE batch_id = ? AND status = ?", (batch.batch_id, FAILED)
        )
        failed = rows[0][0]
        if not core.budget_exceeded(failed, policy.max_failed_jobs, batch.total_jobs):
            return False
        message = core.budget_message(failed, policy.max_failed_jobs, batch.total_jobs)
        await self.db.execute(
            "UPDATE batches SET aborted = 1, status_message = ? WHERE batch_id = ?", (message, batch.batch_id)
        )
        await self._cancel_pending(batch.batch_id, now, "batch aborted: " + message)
        return True

    async def _cancel_pending(self, batch_id: str, now: float, message: str) -> int:
        rows = await self.db.execute_fetchall(
            "SELECT job_id FROM jobs WHERE batch_id = ? AND status = ?", (batch_id, PENDING)
        )
        pending = [r[0] for r in rows]
        await self.db.executemany(
            "UPDATE jobs SET status = ?, result = ?, reason = 'cancelled', finished_at = ?"
            " WHERE job_id = ? AND status = ?",
            ((CANCELLED, result_bytes(j, 0, "cancelled", message), now, j, PENDING) for j in pending),
        )
        return len(pending)

    async def cancel_batch(self, batch_id: str, now: float) -> tuple[int, list[JobRow]]:
        """Flag the batch cancelled and cancel its pending jobs (each gets a final cancelled
        result); returns (pending jobs cancelled, running jobs to kill)."""
        async with self.transaction() as db:
            await db.execute("UPDATE batches SET cancelled = 1 WHERE batch_id = ?", (batch_id,))
            cancelled = await self._cancel_pending(batch_id, now, "batch cancelled before the job started")
            await self._stamp_finished(batch_id, now)
        return cancelled, await self.batch_jobs(batch_id, (RUNNING,))

    async def rerun_failed(self, batch_id: str, now: float) -> int:
        """Queue a finished batch's failed jobs again (same parameters; attempt numbers continue,
        retry and runner-loss budgets reset); the batch runs again. Returns the jobs requeued."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE jobs SET status = ?, failures = 0, runner_losses = 0, not_before = 0, finished_at = NULL"
                " WHERE batch_id = ? AND status = ?",
                (PENDING, batch_id, FAILED),
            )
            requeued = cur.rowcount
            if requeued:
                await db.execute(
                    "UPDATE batches SET aborted = 0, status_message = '', finished_at = NULL WHERE batch_id = ?",
                    (batch_id,),
                )
        return requeued

    async def _stamp_finished(self, batch_id: str, now: float) -> None:
        marks = ",".join("?" * len(TERMINAL))
        await self.db.execute(
            "UPDATE batches SET finished_at = ? WHERE batch_id = ?"
            f" AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = ? AND status NOT IN ({marks}))",
            (now, batch_id, batch_id, *TERMINAL),
        )

    # ---- runners --------------------------------------------------------------------------

    async def upsert_runner(self, runner: RunnerRow) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO runners (runner_id, name, engines, capabilities, online, last_heartbeat,"
                " heartbeat_interval) VALUES (?,?,?,?,?,?,?) ON CONFLICT(runner_id) DO UPDATE SET"
                " name = excluded.name, engines = excluded.engines, capabilities = excluded.capabilities,"
                " online = excluded.online, last_heartbeat = excluded.last_heartbeat,"
                " heartbeat_interval = excluded.heartbeat_interval",
                (
                    runner.runner_id, runner.name, json.dumps(runner.engines), runner.capabilities,
                    int(runner.online), runner.last_heartbeat, runner.heartbeat_interval,
                ),
            )

    async def set_runner_online(self, runner_id: str, online: bool, heartbeat: float | None = None) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE runners SET online = ?, last_heartbeat = COALESCE(?, last_heartbeat) WHERE runner_id = ?",
                (int(online), heartbeat, runner_id),
            )

    async def mark_all_runners_offline(self) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE runners SET online = 0")

    async def list_runners(self, runner_id: str | None = None) -> list[RunnerRow]:
        where, args = ("WHERE r.runner_id = ?", (runner_id,)) if runner_id else ("", ())
        rows = await self.db.execute_fetchall(
            "SELECT r.runner_id, r.name, r.engines, r.capabilities, r.online, r.last_heartbeat,"
            " (SELECT COUNT(*) FROM jobs j WHERE j.runner_id = r.runner_id AND j.status = ?), r.heartbeat_interval"
            f" FROM runners r {where} ORDER BY r.runner_id",
            (RUNNING, *args),
        )
        rows = rows
        return [RunnerRow(r[0], r[1], json.loads(r[2]), r[3], bool(r[4]), r[5], r[6], r[7]) for r in rows]


def _ending_rows(e: Ending, job: JobRow, batch: BatchRow, now: float) -> tuple[core.Decision, tuple]:
    """The decision for one current attempt's end, and its (attempts row, jobs row) update parameters."""
    decision = _decide(e.kind, e.report, job, e.policy, batch.cancelled or batch.aborted)
    result = e.report.result if e.kind == "finished" else _scheduler_result(job, e.attempt, e.kind, decision)
    reason = e.report.reason if e.kind == "finished" else ("runner_lost" if e.kind == "lost" else e.kind)
    r = e.report
    attempt_row = (now, r.outcome, r.exit_code, reason, r.error_message, int(r.reported), e.job_id, e.attempt)
    terminal = decision.status in TERMINAL
    job_row = (decision.status, result, int(decision.charge), int(decision.lost), now + decision.delay,
               result is not None, reason, terminal, now, e.job_id)
    return decision, (attempt_row, job_row)


def _decide(kind: str, report: Report, job: JobRow, policy: core.RetryPolicy, stopping: bool) -> core.Decision:
    """The job's next status after its current attempt ended this way."""
    if kind == "finished":
        if report.outcome == "completed":
            return core.Decision(core.COMPLETED)
        return core.decide_after_failure(report.reason, job.failures + 1, policy, stopping)
    if kind == "lost":
        return core.decide_after_loss(job.runner_losses + 1, policy, stopping)
    if kind == "released":
        return core.Decision(CANCELLED if stopping else PENDING)
    return core.Decision(CANCELLED)


def _scheduler_result(job: JobRow, attempt: int, kind: str, decision: core.Decision) -> bytes | None:
    """The final result the scheduler writes when an attempt ends without a runner's result."""
    if decision.status == CANCELLED:
        return result_bytes(job.job_id, attempt, "cancelled", "batch cancelled")
    if decision.status == FAILED and kind == "lost":
        losses = job.runner_losses + 1
        return result_bytes(job.job_id, attempt, core.RUNNER_LOST,
                            f"lost its runner {losses} times (compute.max_runner_losses)")
    return None


def result_bytes(job_id: str, attempt: int, reason: str, message: str) -> bytes:
    """A serialized failed JobResult written by the scheduler itself."""
    return pb.JobResult(
        job_id=job_id, attempt=attempt, success=False, error_message=message, termination_reason=reason,
        exit_code=0,
    ).SerializeToString()

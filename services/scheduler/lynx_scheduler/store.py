"""SQLite store of batches, jobs, attempts and runners: SQL only, returning plain rows and values."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from lynx_common import limits
from lynx_scheduler.policy import FAILED, JOB_STATUSES, PENDING, RUNNING
from lynx_scheduler.rows import (
    ATTEMPT_COLUMNS,
    BATCH_COLUMNS,
    JOB_COLUMNS,
    BatchRow,
    JobRow,
    RunnerRow,
    attempt_of,
    batch_of,
    job_of,
)
from lynx_scheduler.schema import open_store_database
from lynx_scheduler.transaction import Tx
from lynx_scheduler.transaction import marks as _marks

RUNS_COLUMNS = "run_id, job_id, seed, sample_id, parameters, status, attempts, runner_id, result, finished_at"


class Store:
    """All scheduler state in one SQLite file; every method is one transaction.

    An asyncio lock serialises the writing methods, since every coroutine shares one aiosqlite
    connection (and so one transaction).
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self.lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) the database at `path`, migrating an older schema."""
        return cls(await open_store_database(path))

    async def close(self) -> None:
        await self.db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """Hold the lock for one transaction: commit on success, roll back on error."""
        async with self.lock:
            try:
                yield Tx(self.db)
            except BaseException:
                await self.db.rollback()
                raise
            await self.db.commit()

    # ---- batches -------------------------------------------------------------------------

    async def insert_hidden_batch(self, batch: BatchRow) -> None:
        """Insert a batch with ready = 0: listings and dispatch ignore it until reveal_batch()."""
        async with self.transaction() as tx:
            await tx.db.execute(
                "INSERT INTO batches (batch_id, name, config, seed, total_jobs, engine, sim_type, max_parallel,"
                " max_retries, cancelled, created_at, ready, warnings) VALUES (?,?,?,?,?,?,?,?,?,?,?,0,?)",
                (
                    batch.batch_id, batch.name, batch.config, batch.seed, batch.total_jobs,
                    batch.engine, batch.sim_type, batch.max_parallel, batch.max_retries, int(batch.cancelled),
                    batch.created_at, json.dumps(batch.warnings),
                ),
            )

    async def add_sample(self, batch_id: str, first_run_id: int, runs: bytes, count: int) -> None:
        """One sample chunk (`count` consecutive runs from first_run_id) and its pending jobs, in
        one short transaction."""
        async with self.transaction() as tx:
            await tx.insert_sample(batch_id, first_run_id, runs, count)

    async def reveal_batch(self, batch_id: str, total_jobs: int) -> None:
        """A submission finished inserting its jobs: the batch becomes visible and leasable."""
        async with self.transaction() as tx:
            await tx.db.execute("UPDATE batches SET ready = 1, total_jobs = ? WHERE batch_id = ?",
                                (total_jobs, batch_id))

    async def discard_unready_batch(self, batch_id: str) -> None:
        """Remove a submission that did not complete (a batch still ready = 0), its jobs and samples."""
        async with self.transaction() as tx:
            for table in ("jobs", "samples"):
                await tx.db.execute(
                    f"DELETE FROM {table} WHERE batch_id ="
                    " (SELECT batch_id FROM batches WHERE batch_id = ? AND ready = 0)",
                    (batch_id,),
                )
            await tx.db.execute("DELETE FROM batches WHERE batch_id = ? AND ready = 0", (batch_id,))

    async def extend_batch(self, batch_id: str, chunks: list[tuple[int, bytes, int]]) -> int:
        """Add sample chunks (first_run_id, runs, count) as pending jobs and open the batch
        again, atomically; returns the jobs added."""
        added = sum(count for _, _, count in chunks)
        async with self.transaction() as tx:
            for first_run_id, runs, count in chunks:
                await tx.insert_sample(batch_id, first_run_id, runs, count)
            await tx.db.execute(
                "UPDATE batches SET total_jobs = total_jobs + ?, finished_at = NULL WHERE batch_id = ?",
                (added, batch_id),
            )
        return added

    async def next_run_id(self, batch_id: str) -> int:
        """The run id after the batch's last one (its run count)."""
        rows = await self.db.execute_fetchall(
            "SELECT COALESCE(MAX(run_id) + 1, 0) FROM jobs WHERE batch_id = ?", (batch_id,)
        )
        return rows[0][0]

    async def delete_unready_batches(self) -> int:
        """At start-up: batches whose submission died half-way (ready = 0) go, with their jobs."""
        unready = "(SELECT batch_id FROM batches WHERE ready = 0)"
        async with self.transaction() as tx:
            await tx.db.execute(
                f"DELETE FROM attempts WHERE job_id IN (SELECT job_id FROM jobs WHERE batch_id IN {unready})"
            )
            await tx.db.execute(f"DELETE FROM jobs WHERE batch_id IN {unready}")
            await tx.db.execute(f"DELETE FROM samples WHERE batch_id IN {unready}")
            cur = await tx.db.execute("DELETE FROM batches WHERE ready = 0")
            return cur.rowcount

    async def get_batch(self, batch_id: str, with_counts: bool = True) -> BatchRow | None:
        """The batch (with its job counts by status unless with_counts is False), or None."""
        batch = await Tx(self.db).batch(batch_id)
        if batch is not None and with_counts:
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
        marks = _marks(len(by_id))
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
            by_id[batch_id].failures_by_reason[reason or ""] = n

    async def list_batches(self, limit: int) -> list[BatchRow]:
        """Newest batches first, with counts."""
        rows = await self.db.execute_fetchall(
            f"SELECT {BATCH_COLUMNS} FROM batches WHERE ready = 1 ORDER BY created_at DESC LIMIT ?", (limit,)
        )
        batches = [batch_of(r) for r in rows]
        await self._fill_counts(batches)
        return batches

    async def active_batches(self) -> list[tuple[BatchRow, int]]:
        """(batch, running jobs) for ready batches that are neither cancelled nor aborted and have
        pending jobs, oldest first."""
        rows = await self.db.execute_fetchall(
            f"SELECT {BATCH_COLUMNS}, (SELECT COUNT(*) FROM jobs r WHERE r.batch_id = b.batch_id AND r.status = ?)"
            " FROM batches b WHERE cancelled = 0 AND aborted = 0 AND ready = 1 AND EXISTS"
            " (SELECT 1 FROM jobs j WHERE j.batch_id = b.batch_id AND j.status = ?)"
            " ORDER BY created_at",
            (RUNNING, PENDING),
        )
        return [(batch_of(r[:-1]), r[-1]) for r in rows]

    async def pending_jobs(self, batch_id: str, limit: int, now: float | None = None) -> list[JobRow]:
        """Pending jobs in run order whose backoff has passed at `now` (all of them when None)."""
        due = float("inf") if now is None else now
        rows = await self.db.execute_fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE batch_id = ? AND status = ? AND not_before <= ?"
            " ORDER BY run_id LIMIT ?",
            (batch_id, PENDING, due, limit),
        )
        return [job_of(r) for r in rows]

    async def next_not_before(self, batch_id: str, now: float) -> float | None:
        """When the batch's next backed-off pending job becomes due, if any."""
        rows = await self.db.execute_fetchall(
            "SELECT MIN(not_before) FROM jobs WHERE batch_id = ? AND status = ? AND not_before > ?",
            (batch_id, PENDING, now),
        )
        return rows[0][0]

    async def sample(self, sample_id: int) -> tuple[int, bytes] | None:
        """(first_run_id, serialized RunColumns) of one sample chunk."""
        rows = await self.db.execute_fetchall(
            "SELECT first_run_id, runs FROM samples WHERE sample_id = ?", (sample_id,)
        )
        return (rows[0][0], rows[0][1]) if rows else None

    # ---- leases and attempts ----------------------------------------------------------------

    async def lease_many(self, assignments: Iterable[tuple[str, str]], now: float) -> list[int]:
        """Lease pending jobs [(job_id, runner_id)] in one transaction; each gets a new attempt
        row. Returns the attempt numbers (0 for a job that was no longer pending)."""
        assignments = list(assignments)
        if not assignments:
            return []
        job_ids = [job_id for job_id, _ in assignments]
        async with self.transaction() as tx:
            rows = await tx.db.execute_fetchall(
                f"SELECT job_id, attempts, batch_id FROM jobs WHERE job_id IN ({_marks(len(job_ids))})"
                " AND status = ? AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.batch_id = jobs.batch_id"
                " AND b.cancelled = 1)",  # a cancel in progress (chunked) leases nothing more
                (*job_ids, PENDING),
            )
            pending = {r[0]: (r[1] + 1, r[2]) for r in rows}
            leased = [(job_id, runner_id) for job_id, runner_id in assignments if job_id in pending]
            await tx.db.executemany(
                "UPDATE jobs SET status = ?, attempts = ?, runner_id = ?, started_at = ? WHERE job_id = ?",
                ((RUNNING, pending[j][0], r, now, j) for j, r in leased),
            )
            await tx.db.executemany(
                "INSERT OR REPLACE INTO attempts (job_id, attempt, runner_id, started_at) VALUES (?,?,?,?)",
                ((j, pending[j][0], r, now) for j, r in leased),
            )
            await tx.db.executemany(
                "UPDATE batches SET started_at = ? WHERE batch_id = ? AND started_at IS NULL",
                ((now, batch_id) for batch_id in {b for _, b in pending.values()}),
            )
        return [pending[j][0] if j in pending else 0 for j in job_ids]

    async def get_job(self, job_id: str, with_history: bool = False) -> JobRow | None:
        rows = await self.db.execute_fetchall(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
        if not rows:
            return None
        job = job_of(rows[0])
        if with_history:
            attempts = await self.db.execute_fetchall(
                f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE job_id = ? ORDER BY attempt", (job_id,)
            )
            job.history = [attempt_of(r) for r in attempts]
        return job

    async def batch_jobs(
        self, batch_id: str, statuses: tuple[str, ...] = JOB_STATUSES, with_history: bool = False,
        after_run_id: int = -1, limit: int = -1,
    ) -> list[JobRow]:
        """A ready batch's jobs with the given statuses, in run order (none while it is not ready);
        with_history also loads every job's attempts, in one more query. `after_run_id` and `limit`
        (-1 = no limit) select one page."""
        rows = await self.db.execute_fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE batch_id = ? AND status IN ({_marks(len(statuses))})"
            " AND run_id > ? AND EXISTS (SELECT 1 FROM batches WHERE batch_id = jobs.batch_id AND ready = 1)"
            " ORDER BY run_id LIMIT ?",
            (batch_id, *statuses, after_run_id, limit),
        )
        jobs = [job_of(r) for r in rows]
        if with_history and jobs:
            by_id = {j.job_id: j for j in jobs}
            cols = ", ".join(f"a.{c.strip()}" for c in ATTEMPT_COLUMNS.split(","))
            if limit < 0:
                attempts = await self.db.execute_fetchall(
                    f"SELECT {cols} FROM attempts a JOIN jobs j ON j.job_id = a.job_id WHERE j.batch_id = ?"
                    " ORDER BY a.job_id, a.attempt",
                    (batch_id,),
                )
            else:  # one page: only its jobs' attempts
                attempts = await self.db.execute_fetchall(
                    f"SELECT {cols} FROM attempts a WHERE a.job_id IN ({_marks(len(by_id))})"
                    " ORDER BY a.job_id, a.attempt",
                    tuple(by_id),
                )
            for row in attempts:
                if row[0] in by_id:
                    by_id[row[0]].history.append(attempt_of(row))
        return jobs

    async def runs_page(self, batch_id: str, after_run_id: int, limit: int) -> list[JobRow]:
        """Up to `limit` jobs of a batch with run_id > after_run_id, in run order (one index range
        scan per page, so a large batch is read in pages, never whole)."""
        rows = await self.db.execute_fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE batch_id = ? AND run_id > ? ORDER BY run_id LIMIT ?",
            (batch_id, after_run_id, limit),
        )
        return [job_of(r) for r in rows]

    async def runs_rows(self, batch_id: str, after_run_id: int, limit: int) -> list[tuple]:
        """runs_page's jobs as plain tuples of RUNS_COLUMNS, for a reader that takes them column-wise."""
        return list(
            await self.db.execute_fetchall(
                f"SELECT {RUNS_COLUMNS} FROM jobs WHERE batch_id = ? AND run_id > ? ORDER BY run_id LIMIT ?",
                (batch_id, after_run_id, limit),
            )
        )

    async def running_leases(self) -> list[tuple[str, int, str, str]]:
        """(job_id, attempt, runner_id, batch_id) of every running job: the leases a restart reconciles."""
        rows = await self.db.execute_fetchall(
            "SELECT job_id, attempts, runner_id, batch_id FROM jobs WHERE status = 'Running'"
        )
        return [tuple(r) for r in rows]

    async def cancel_batch(self, batch_id: str, now: float, result: bytes) -> tuple[int, list[JobRow]]:
        """Flag the batch cancelled and cancel its pending jobs (each gets `result` as its final
        one); returns (pending jobs cancelled, running jobs to kill)."""
        async with self.transaction() as tx:  # from here on nothing of the batch is leased
            await tx.db.execute("UPDATE batches SET cancelled = 1 WHERE batch_id = ?", (batch_id,))
        cancelled, chunk = 0, limits.value("cancel_chunk")
        while True:  # one transaction per chunk, so heartbeats and reads are served in between
            async with self.transaction() as tx:
                done = await tx.cancel_pending(batch_id, now, result, chunk)
            cancelled += done
            if done < chunk:
                break
            await asyncio.sleep(0)
        async with self.transaction() as tx:
            await tx.stamp_finished(batch_id, now)
        return cancelled, await self.batch_jobs(batch_id, (RUNNING,))

    async def rerun_failed(self, batch_id: str) -> int:
        """Queue a finished batch's failed jobs again (same parameters; attempt numbers continue,
        retry and runner-loss budgets reset); the batch runs again. Returns the jobs requeued."""
        async with self.transaction() as tx:
            cur = await tx.db.execute(
                "UPDATE jobs SET status = ?, failures = 0, runner_losses = 0, not_before = 0, finished_at = NULL"
                " WHERE batch_id = ? AND status = ?",
                (PENDING, batch_id, FAILED),
            )
            requeued = cur.rowcount
            if requeued:
                await tx.db.execute(
                    "UPDATE batches SET aborted = 0, status_message = '', finished_at = NULL WHERE batch_id = ?",
                    (batch_id,),
                )
        return requeued

    # ---- runners --------------------------------------------------------------------------

    async def upsert_runner(self, runner: RunnerRow) -> None:
        async with self.transaction() as tx:
            await tx.db.execute(
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
        async with self.transaction() as tx:
            await tx.db.execute(
                "UPDATE runners SET online = ?, last_heartbeat = COALESCE(?, last_heartbeat) WHERE runner_id = ?",
                (int(online), heartbeat, runner_id),
            )

    async def mark_all_runners_offline(self) -> None:
        async with self.transaction() as tx:
            await tx.db.execute("UPDATE runners SET online = 0")

    async def list_runners(self, runner_id: str | None = None) -> list[RunnerRow]:
        where, args = ("WHERE r.runner_id = ?", (runner_id,)) if runner_id else ("", ())
        rows = await self.db.execute_fetchall(
            "SELECT r.runner_id, r.name, r.engines, r.capabilities, r.online, r.last_heartbeat,"
            " (SELECT COUNT(*) FROM jobs j WHERE j.runner_id = r.runner_id AND j.status = 'Running'),"
            f" r.heartbeat_interval FROM runners r {where} ORDER BY r.runner_id",
            args,
        )
        return [RunnerRow(r[0], r[1], json.loads(r[2]), r[3], bool(r[4]), r[5], r[6], r[7]) for r in rows]

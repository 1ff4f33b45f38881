"""SQL inside one open transaction of the scheduler's store: the steps settling and submitting are made of."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import aiosqlite

from lynx_scheduler.policy import FAILED, PENDING, TERMINAL
from lynx_scheduler.rows import (
    ATTEMPT_COLUMNS,
    BATCH_COLUMNS,
    JOB_COLUMNS,
    AttemptEnd,
    AttemptRow,
    BatchRow,
    JobMove,
    JobRow,
    attempt_of,
    batch_of,
    job_of,
)

# One pending job per run of a chunk (consecutive runs first..last), generated inside SQLite: no
# per-row Python binding, and SQLite runs it with the GIL released, beside the next chunk's read.
# Job ids are UUID-shaped: the chunk's random prefix (58 random bits) and the run id in the last
# group, so they are unique and ascend with run_id (cheap B-tree inserts). A job's seed and
# parameters stay in its sample chunk (sample_id): seed is NULL in these rows.
_INSERT_JOBS = """
WITH RECURSIVE run(id) AS (SELECT ? UNION ALL SELECT id + 1 FROM run WHERE id < ?)
INSERT INTO jobs (job_id, batch_id, run_id, sample_id, status)
SELECT printf('%s%012x', ?, id), ?, id, ?, ? FROM run
"""


def job_id_prefix() -> str:
    """A fresh random prefix for one chunk's job ids ("xxxxxxxx-xxxx-4xxx-yxxx-")."""
    return str(uuid.uuid4())[:24]


def job_id(prefix: str, run_id: int) -> str:
    """The id _INSERT_JOBS gives run `run_id` of a chunk with this prefix."""
    return f"{prefix}{run_id:012x}"


def marks(n: int) -> str:
    return ",".join("?" * n)


class Tx:
    """SQL inside one open transaction (see Store.transaction)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def insert_sample(self, batch_id: str, first_run_id: int, runs: bytes, count: int) -> None:
        """Keep a sample chunk (serialized RunColumns of `count` consecutive runs from
        first_run_id) and add one pending job per run of it."""
        cur = await self.db.execute(
            "INSERT INTO samples (batch_id, first_run_id, runs) VALUES (?,?,?)", (batch_id, first_run_id, runs)
        )
        if count:
            await self.db.execute(
                _INSERT_JOBS,
                (first_run_id, first_run_id + count - 1, job_id_prefix(), batch_id, cur.lastrowid, PENDING),
            )

    async def jobs_by_id(self, job_ids: Sequence[str]) -> dict[str, JobRow]:
        rows = await self.db.execute_fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id IN ({marks(len(job_ids))})", job_ids
        )
        return {r[0]: job_of(r) for r in rows}

    async def attempts_by_key(self, job_ids: Sequence[str]) -> dict[tuple[str, int], AttemptRow]:
        rows = await self.db.execute_fetchall(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE job_id IN ({marks(len(job_ids))})", job_ids
        )
        return {(r[0], r[1]): attempt_of(r) for r in rows}

    async def batch(self, batch_id: str) -> BatchRow | None:
        rows = await self.db.execute_fetchall(f"SELECT {BATCH_COLUMNS} FROM batches WHERE batch_id = ?", (batch_id,))
        return batch_of(rows[0]) if rows else None

    async def count_ignored(self, keys: list[tuple[str, int]]) -> None:
        """Reports of attempts that had already ended: counted, nothing else."""
        await self.db.executemany(
            "UPDATE attempts SET ignored_reports = ignored_reports + 1 WHERE job_id = ? AND attempt = ?", keys
        )

    async def end_attempts(self, ends: list[AttemptEnd]) -> None:
        await self.db.executemany(
            "UPDATE attempts SET ended_at = ?, outcome = ?, exit_code = ?, reason = ?, error_message = ?,"
            " reported = ? WHERE job_id = ? AND attempt = ?",
            ((e.ended_at, e.outcome, e.exit_code, e.reason, e.error_message, int(e.reported), e.job_id, e.attempt)
             for e in ends),
        )

    async def move_jobs(self, moves: list[JobMove]) -> None:
        await self.db.executemany(
            "UPDATE jobs SET status = ?, result = COALESCE(?, result), failures = failures + ?,"
            " runner_losses = runner_losses + ?, not_before = ?, reason = CASE WHEN ? THEN ? ELSE reason END,"
            " finished_at = COALESCE(?, finished_at) WHERE job_id = ?",
            ((m.status, m.result, int(m.charge), int(m.lost), m.not_before, m.result is not None, m.reason,
              m.finished_at, m.job_id) for m in moves),
        )

    async def failed_jobs(self, batch_id: str) -> int:
        rows = await self.db.execute_fetchall(
            "SELECT COUNT(*) FROM jobs WHERE batch_id = ? AND status = ?", (batch_id, FAILED)
        )
        return rows[0][0]

    async def abort_batch(self, batch_id: str, message: str) -> None:
        await self.db.execute(
            "UPDATE batches SET aborted = 1, status_message = ? WHERE batch_id = ?", (message, batch_id)
        )

    async def cancel_pending(self, batch_id: str, now: float, result: bytes, limit: int = -1) -> int:
        """Cancel a batch's pending jobs (at most `limit`; -1 = all), each with `result` (a JobResult
        without job id) as its final one; returns how many."""
        cur = await self.db.execute(
            "UPDATE jobs SET status = 'Cancelled', result = ?, reason = 'cancelled', finished_at = ?"
            " WHERE rowid IN (SELECT rowid FROM jobs WHERE batch_id = ? AND status = ? LIMIT ?)",  # rowid: 2x job_id
            (result, now, batch_id, PENDING, limit),
        )
        return cur.rowcount

    async def stamp_finished(self, batch_id: str, now: float) -> None:
        """finished_at = now once every job of the batch is terminal."""
        await self.db.execute(
            "UPDATE batches SET finished_at = ? WHERE batch_id = ?"
            f" AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = ? AND status NOT IN ({marks(len(TERMINAL))}))",
            (now, batch_id, batch_id, *TERMINAL),
        )



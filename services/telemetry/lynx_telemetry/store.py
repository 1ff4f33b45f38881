"""SQLite storage of telemetry samples, written in batches.

Layout: one `series` row per (job_id, variable), carrying the job's batch_id, and
one `points` row per (series, timestamp_ns) in a WITHOUT ROWID table clustered on
that key. That is the index (job_id, variable, timestamp_ns) the queries need,
at about 20 bytes per point instead of repeating two ids and a name in every
row. `series_by_batch` serves batch-wide export. The view `samples` shows the
flat (job_id, batch_id, variable, timestamp_ns, value) rows for ad-hoc SQL.

A (job, variable, timestamp) holds one value: a later write replaces it, which
also makes a relay's re-sent batch harmless. Writes use one connection (WAL,
one transaction per published batch); Query uses a second, read-only one, and
each Export its own, so reads never queue behind ingest.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable
from math import isfinite
from pathlib import Path
from typing import Any

import aiosqlite

from lynx_common.sqlite import open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    series_id INTEGER PRIMARY KEY,
    job_id    TEXT NOT NULL,
    variable  TEXT NOT NULL,
    batch_id  TEXT NOT NULL DEFAULT '',
    UNIQUE (job_id, variable)
);
CREATE INDEX IF NOT EXISTS series_by_batch ON series(batch_id, job_id, variable);
CREATE TABLE IF NOT EXISTS points (
    series_id    INTEGER NOT NULL,
    timestamp_ns INTEGER NOT NULL,
    value        REAL NOT NULL,
    PRIMARY KEY (series_id, timestamp_ns)
) WITHOUT ROWID;
"""

# Databases written before the series/points layout had one flat table; open() folds it in.
MIGRATE_FLAT_SAMPLES = """
INSERT OR IGNORE INTO series (job_id, variable, batch_id)
    SELECT job_id, variable, MAX(batch_id) FROM samples GROUP BY job_id, variable;
INSERT OR REPLACE INTO points (series_id, timestamp_ns, value)
    SELECT s.series_id, o.timestamp_ns, o.value FROM samples o JOIN series s USING (job_id, variable);
DROP TABLE samples;
"""

SAMPLES_VIEW = """
CREATE VIEW IF NOT EXISTS samples AS
    SELECT s.job_id, s.batch_id, s.variable, p.timestamp_ns, p.value
    FROM series s JOIN points p ON p.series_id = s.series_id;
"""

SERIES_CACHE_JOBS = 10_000  # jobs whose variable -> series_id maps are kept in memory
EXPORT_PAGE_ROWS = 5_000

Series = dict[str, tuple[list[int], list[float]]]


class TelemetryStore:
    """Telemetry points by series; one transaction per published batch."""

    def __init__(self, path: Path, db: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self.path = path
        self.db = db
        self.reader = reader
        self._series: dict[str, dict[str, int]] = {}

    @classmethod
    async def open(cls, path: str | Path) -> TelemetryStore:
        """Open (creating or migrating) the database at `path`."""
        path = Path(path)
        db = await open_database(path, SCHEMA)
        await _migrate(db)
        return cls(path, db, await _open_reader(path))

    async def close(self) -> None:
        """Close both connections."""
        await self.reader.close()
        await self.db.close()

    async def append(self, job_id: str, batch_id: str, samples: Iterable[Any]) -> int:
        """Store the finite values of one job's samples (TelemetrySample-like: `timestamp_ns`,
        `values`) in one transaction; return the number of points written."""
        ids = self._series.get(job_id)
        if ids is None:
            if len(self._series) >= SERIES_CACHE_JOBS:
                self._series.clear()
            ids = self._series[job_id] = {}
        while True:
            try:
                rows = [
                    (ids[name], s.timestamp_ns, value)
                    for s in samples
                    for name, value in s.values.items()
                    if isfinite(value)
                ]
                break
            except KeyError as missing:  # first value of a variable in this job
                ids[missing.args[0]] = await self._series_id(job_id, batch_id, missing.args[0])
        if rows:
            await self.db.executemany(
                "INSERT OR REPLACE INTO points (series_id, timestamp_ns, value) VALUES (?,?,?)", rows
            )
        await self.db.commit()
        return len(rows)

    async def _series_id(self, job_id: str, batch_id: str, variable: str) -> int:
        """The id of the (job, variable) series, created on first use."""
        await self.db.execute(
            "INSERT OR IGNORE INTO series (job_id, variable, batch_id) VALUES (?,?,?)", (job_id, variable, batch_id)
        )
        async with self.db.execute(
            "SELECT series_id FROM series WHERE job_id = ? AND variable = ?", (job_id, variable)
        ) as cur:
            (sid,) = await cur.fetchone()
        return sid

    async def query(
        self,
        job_id: str,
        variables: list[str],
        start_ns: int | None,
        end_ns: int | None,
        limit: int,
    ) -> Series:
        """Series by variable name, ascending in time, at most `limit` points each (0 = all)."""
        where, args = ["job_id = ?"], [job_id]
        if variables:
            where.append(f"variable IN ({','.join('?' * len(variables))})")
            args.extend(variables)
        async with self.reader.execute(
            f"SELECT series_id, variable FROM series WHERE {' AND '.join(where)} ORDER BY variable", args
        ) as cur:
            found = await cur.fetchall()
        time_sql, time_args = _time_range(start_ns, end_ns, "timestamp_ns")
        series: Series = {}
        for sid, variable in found:
            sql = f"SELECT timestamp_ns, value FROM points WHERE series_id = ?{time_sql} ORDER BY timestamp_ns"
            params = [sid, *time_args]
            if limit:
                sql += " LIMIT ?"
                params.append(limit)
            async with self.reader.execute(sql, params) as cur:
                rows = await cur.fetchall()
            if rows:
                series[variable] = ([r[0] for r in rows], [r[1] for r in rows])
        return series

    async def export_rows(
        self,
        job_id: str,
        batch_id: str,
        variables: list[str],
        start_ns: int | None,
        end_ns: int | None,
    ) -> AsyncIterator[list[tuple[str, int, str, float]]]:
        """Pages of (job_id, timestamp_ns, variable, value) rows of one job (or of every job of
        `batch_id` when `job_id` is empty), ordered by job, variable and time; one snapshot."""
        where, args = (["s.job_id = ?"], [job_id]) if job_id else (["s.batch_id = ?"], [batch_id])
        if variables:
            where.append(f"s.variable IN ({','.join('?' * len(variables))})")
            args.extend(variables)
        time_sql, time_args = _time_range(start_ns, end_ns, "p.timestamp_ns")
        sql = (
            "SELECT s.job_id, p.timestamp_ns, s.variable, p.value FROM series s"
            f" JOIN points p ON p.series_id = s.series_id WHERE {' AND '.join(where)}{time_sql}"
            " ORDER BY s.job_id, s.variable, p.timestamp_ns"
        )
        db = await _open_reader(self.path)
        try:
            async with db.execute(sql, [*args, *time_args]) as cur:
                while page := await cur.fetchmany(EXPORT_PAGE_ROWS):
                    yield page
        finally:
            await db.close()


def _time_range(start_ns: int | None, end_ns: int | None, column: str) -> tuple[str, list[int]]:
    """SQL (starting with " AND ") and arguments for an inclusive time window."""
    sql, args = "", []
    if start_ns is not None:
        sql += f" AND {column} >= ?"
        args.append(start_ns)
    if end_ns is not None:
        sql += f" AND {column} <= ?"
        args.append(end_ns)
    return sql, args


async def _open_reader(path: Path) -> aiosqlite.Connection:
    """A read-only connection to the (WAL) database."""
    db = await aiosqlite.connect(str(path))
    await db.execute("PRAGMA query_only = 1")
    return db


async def _migrate(db: aiosqlite.Connection) -> None:
    """Fold a pre-series flat `samples` table into series/points, then (re)create the view."""
    async with db.execute("SELECT type FROM sqlite_master WHERE name = 'samples'") as cur:
        row = await cur.fetchone()
    if row is not None and row[0] == "table":
        try:
            await db.executescript(f"BEGIN;{MIGRATE_FLAT_SAMPLES}COMMIT;")
        except sqlite3.Error:
            await db.rollback()
            raise
    await db.executescript(SAMPLES_VIEW)
    await db.commit()

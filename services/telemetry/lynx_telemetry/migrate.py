"""Telemetry written by earlier versions (one SQLite row per value) becomes segments on open.

Two old layouts live in the same `telemetry.db` as the index: `series` + `points`
(one row per series and point) and, older still, the flat `samples` table. Each
job's rows are read, written as segments like any published batch, and the old
tables are dropped once every segment is written.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lynx_telemetry.store import TelemetryStore

log = logging.getLogger(__name__)

SERIES_POINTS = ("SELECT s.job_id, s.batch_id, s.variable, p.timestamp_ns, p.value FROM series s"
                 " JOIN points p ON p.series_id = s.series_id ORDER BY s.job_id")
FLAT = "SELECT job_id, batch_id, variable, timestamp_ns, value FROM samples ORDER BY job_id"
PAGE_ROWS = 100_000


def old_layout(index: sqlite3.Connection) -> str | None:
    """The SELECT that reads the old rows, or None when there are none."""
    tables = {name: kind for name, kind in index.execute("SELECT name, type FROM sqlite_master")}
    if tables.get("points") == "table" and tables.get("series") == "table":
        return SERIES_POINTS
    if tables.get("samples") == "table":
        return FLAT
    return None


async def migrate_rows(store: TelemetryStore, index: sqlite3.Connection, select: str) -> int:
    """Append the old rows job by job, write them as segments, drop the old tables; return rows moved."""
    moved, cursor = 0, index.execute(select)
    while page := cursor.fetchmany(PAGE_ROWS):
        start = 0
        for i in range(1, len(page) + 1):
            if i == len(page) or page[i][0] != page[start][0]:  # one job's rows in this page
                rows = page[start:i]
                job = store._job(rows[0][0], rows[0][1], None)
                codes = np.array([job.names.code(r[2]) for r in rows], np.int32)
                ts = np.array([r[3] for r in rows], np.int64)
                values = np.array([r[4] for r in rows], np.float64)
                store._append_chunk(job, (codes, ts, values))
                moved += len(rows)
                start = i
    cursor.close()
    await store.flush()
    kinds = dict(index.execute("SELECT name, type FROM sqlite_master WHERE name IN ('samples','points','series')"))
    for name, kind in kinds.items():
        index.execute(f"DROP {kind.upper()} IF EXISTS {name}")
    log.info("moved %d telemetry values from the old SQLite tables into segments", moved)
    return moved

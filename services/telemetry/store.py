"""SQLite storage of telemetry samples, written in batches."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
from lynx_common.sqlite import open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    job_id       TEXT NOT NULL,
    variable     TEXT NOT NULL,
    timestamp_ns INTEGER NOT NULL,
    value        REAL NOT NULL,
    batch_id     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS samples_by_job ON samples(job_id, variable, timestamp_ns);
"""


class TelemetryStore:
    """Append-only sample rows; one transaction per published batch."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: str | Path) -> TelemetryStore:
        return cls(await open_database(path, SCHEMA))

    async def close(self) -> None:
        await self.db.close()

    async def append(self, rows: list[tuple[str, str, int, float, str]]) -> None:
        """Insert (job_id, variable, timestamp_ns, value, batch_id) rows in one transaction."""
        if not rows:
            return
        await self.db.executemany(
            "INSERT INTO samples (job_id, variable, timestamp_ns, value, batch_id) VALUES (?,?,?,?,?)",
            rows,
        )
        await self.db.commit()

    async def query(
        self,
        job_id: str,
        variables: list[str],
        start_ns: int | None,
        end_ns: int | None,
        limit: int,
    ) -> dict[str, tuple[list[int], list[float]]]:
        """Series by variable name, ascending in time, at most `limit` points each (0 = all)."""
        clauses, args = ["job_id = ?"], [job_id]
        if variables:
            clauses.append(f"variable IN ({','.join('?' * len(variables))})")
            args.extend(variables)
        if start_ns is not None:
            clauses.append("timestamp_ns >= ?")
            args.append(start_ns)
        if end_ns is not None:
            clauses.append("timestamp_ns <= ?")
            args.append(end_ns)
        series: dict[str, tuple[list[int], list[float]]] = {}
        async with self.db.execute(
            f"SELECT variable, timestamp_ns, value FROM samples WHERE {' AND '.join(clauses)}"
            " ORDER BY variable, timestamp_ns",
            args,
        ) as cur:
            async for variable, ts, value in cur:
                times, values = series.setdefault(variable, ([], []))
                if limit and len(times) >= limit:
                    continue
                times.append(ts)
                values.append(value)
        return series

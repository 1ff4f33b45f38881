"""Opening the services' SQLite files the same way everywhere (WAL, normal sync, schema)."""

from __future__ import annotations

from pathlib import Path

import aiosqlite


async def open_database(path: str | Path, schema: str) -> aiosqlite.Connection:
    """Open (creating if needed) a WAL-mode database at `path` and apply `schema`."""
    db = await aiosqlite.connect(str(path))
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("PRAGMA foreign_keys=ON")
    await db.executescript(schema)
    await db.commit()
    return db

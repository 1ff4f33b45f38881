"""Telemetry storage: per-job columnar segments in an object store, indexed in SQLite.

Each job's samples are appended to an in-memory tail of column chunks (codes,
timestamps, values). A tail becomes a segment, a Parquet file under
`<batch_id>/<job_id>/<seq>.parquet`, when it holds `segment_rows` values or its
oldest value is `flush_age_s` old (and on close). Segments are encoded and
uploaded on one writer thread, never on the event loop; while a segment is being
written it stays queryable from memory. The object store is the data dir's
`telemetry-segments/` directory, or the batch's S3 bucket and prefix when its
`telemetry.storage` names one (credentials and endpoint from AWS_*).

The index (SQLite, `telemetry.db`) has one row per job (batch, object store,
codec) and one per segment (key, variables, min/max timestamp, rows), so a
query for some variables of one job over a time range reads only that job's
segments that can hold them. A (job, variable, timestamp) holds one value: a
later write replaces it (segments are read in write order, tail last). Rows of
the older one-row-per-value SQLite layouts are moved into segments when the
index is opened (`migrate.py`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx_common.objectstore import ObjectStore, open_store, s3_url
from lynx_common.telemetry_storage import parquet_codec
from lynx_telemetry.columns import (
    Chunk,
    Dictionary,
    chunk_of_request,
    concat,
    decode_segment,
    encode_segment,
    in_job_codes,
    latest_sorted,
)
from lynx_telemetry.migrate import migrate_rows, old_layout

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry_jobs (
    job_id      TEXT PRIMARY KEY,
    batch_id    TEXT NOT NULL,
    store_url   TEXT NOT NULL,   -- '' = the data dir's segment directory
    codec       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS telemetry_jobs_by_batch ON telemetry_jobs(batch_id, job_id);
CREATE TABLE IF NOT EXISTS telemetry_segments (
    job_id    TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    key       TEXT NOT NULL,
    store_url TEXT NOT NULL,     -- where this segment is: the job's store, or '' after a failed upload
    variables TEXT NOT NULL,     -- JSON list of the variable names in the segment
    min_ns    INTEGER NOT NULL,
    max_ns    INTEGER NOT NULL,
    rows      INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""

SEGMENT_ROWS = 2_000_000  # values in a tail that make it a segment at once
FLUSH_AGE_S = 5.0  # a tail's oldest value waits at most about this long for its segment
BUCKET_RETRY_S = 300.0  # after a failed upload, a bucket is tried again this much later
IDLE_JOB_S = 600.0  # a job with nothing published for this long leaves memory
MAX_WRITING_ROWS = 8_000_000  # values being encoded/uploaded; Publish waits (backpressure) beyond
EXPORT_PAGE_ROWS = 5_000
SEGMENT_DIR = "telemetry-segments"

Series = dict[str, tuple[list[int], list[float]]]
Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass
class Job:
    """One job's in-memory state: its dictionary, tail and segments being written."""

    job_id: str
    batch_id: str
    store_url: str
    codec: str
    next_seq: int = 0
    names: Dictionary = field(default_factory=Dictionary)
    tail: list[Chunk] = field(default_factory=list)
    tail_rows: int = 0
    tail_since: float = 0.0
    writing: dict[int, Chunk] = field(default_factory=dict)  # seq -> chunk until indexed
    last_append: float = 0.0
    failed: set[int] = field(default_factory=set)  # seqs whose write failed, to retry


class TelemetryStore:
    """Columnar segments per job, an index, and in-memory tails."""

    def __init__(self, path: Path, index: sqlite3.Connection, default_store: ObjectStore, *,
                 segment_rows: int = SEGMENT_ROWS, flush_age_s: float = FLUSH_AGE_S) -> None:
        self.path = path
        self.segment_rows = segment_rows
        self.flush_age_s = flush_age_s
        self.segments_read = 0  # segments fetched by queries and exports (for tests and the curious)
        self._index = index
        self._lock = threading.Lock()
        self._stores: dict[str, ObjectStore] = {"": default_store}
        self._unreachable: dict[str, float] = {}  # bucket URL -> monotonic time until which it is skipped
        self._jobs: dict[str, Job] = {}
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="telemetry-segments")
        self._writes: set[asyncio.Future] = set()
        self._writing_rows = 0
        self._room = asyncio.Event()

    @classmethod
    async def open(cls, path: str | Path, *, segments_url: str | None = None, **options: Any) -> TelemetryStore:
        """Open (creating) the index at `path`; segments go to `segments_url` (default: a directory
        beside the index) unless a job's storage names a bucket."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        index = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        index.execute("PRAGMA journal_mode=WAL")
        index.execute("PRAGMA synchronous=NORMAL")
        index.executescript(SCHEMA)
        default = open_store(segments_url or str(path.parent / SEGMENT_DIR))
        store = cls(path, index, default, **options)
        select = old_layout(index)
        if select is not None:
            await migrate_rows(store, index, select)
        return store

    async def close(self) -> None:
        """Write every tail as a segment, wait for the writer, close the index."""
        await self.flush()
        self._writer.shutdown(wait=True)
        with self._lock:
            self._index.close()

    # ------------------------------------------------------------ writing

    async def append_request(self, request: Any) -> int:
        """Store the finite values of a PublishRequest (samples and blocks); return values stored.
        ValueError when its storage names an unknown compression."""
        job = self._job(request.job_id, request.batch_id, request.storage if request.HasField("storage") else None)
        chunk = chunk_of_request(request, job.names)
        if chunk is None:
            return 0
        self._append_chunk(job, chunk)
        while self._writing_rows > MAX_WRITING_ROWS:  # the writer is behind: hold Publish
            self._room.clear()
            await self._room.wait()
        return len(chunk[0])

    def _append_chunk(self, job: Job, chunk: Chunk) -> None:
        """Add a chunk to the job's tail; start a segment when the tail is full."""
        job.last_append = time.monotonic()
        if not job.tail:
            job.tail_since = job.last_append
        job.tail.append(chunk)
        job.tail_rows += len(chunk[0])
        if job.tail_rows >= self.segment_rows:
            self._start_segment(job)

    async def append(self, job_id: str, batch_id: str, samples: Iterable[Any]) -> int:
        """Store TelemetrySample-like samples of one job; return the values stored."""
        return await self.append_request(pb.PublishRequest(job_id=job_id, batch_id=batch_id, samples=samples))

    async def flush(self, older_than_s: float | None = None) -> None:
        """Make segments of the tails (only those whose oldest value is `older_than_s` old, when
        given) and wait until every segment started so far is written."""
        now = time.monotonic()
        self._retry_failed()
        for job in list(self._jobs.values()):
            if job.tail and (older_than_s is None or now - job.tail_since >= older_than_s):
                self._start_segment(job)
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def run_flusher(self, period_s: float = 1.0) -> None:
        """Every `period_s`, write tails older than flush_age_s and forget jobs idle for
        IDLE_JOB_S (their segments stay; a later publish reloads the job), until cancelled."""
        while True:
            await asyncio.sleep(period_s)
            now = time.monotonic()
            self._retry_failed()
            for job in list(self._jobs.values()):
                if job.tail and now - job.tail_since >= self.flush_age_s:
                    self._start_segment(job)
                elif not job.tail and not job.writing and now - job.last_append >= IDLE_JOB_S:
                    del self._jobs[job.job_id]

    def _job(self, job_id: str, batch_id: str, storage: Any) -> Job:
        job = self._jobs.get(job_id)
        if job is not None:
            return job
        store_url, codec = "", parquet_codec("")
        if storage is not None:
            codec = parquet_codec(storage.compression)
            if storage.s3_bucket:
                store_url = s3_url(storage.s3_bucket, storage.s3_prefix)
        with self._lock:
            row = self._index.execute("SELECT batch_id, store_url, codec FROM telemetry_jobs WHERE job_id = ?",
                                      (job_id,)).fetchone()
            if row is None:
                self._index.execute("INSERT INTO telemetry_jobs VALUES (?,?,?,?)", (job_id, batch_id, store_url, codec))
            else:
                batch_id, store_url, codec = row
            (last,) = self._index.execute("SELECT MAX(seq) FROM telemetry_segments WHERE job_id = ?",
                                          (job_id,)).fetchone()
        job = self._jobs[job_id] = Job(job_id, batch_id, store_url, codec, next_seq=0 if last is None else last + 1)
        return job

    def _object_store(self, url: str) -> ObjectStore:
        store = self._stores.get(url)
        if store is None:
            store = self._stores[url] = open_store(url)
        return store

    def _start_segment(self, job: Job) -> None:
        """Hand the job's tail to the writer thread as segment `next_seq`."""
        chunk = concat(job.tail)
        job.tail, job.tail_rows = [], 0
        seq, job.next_seq = job.next_seq, job.next_seq + 1
        job.writing[seq] = chunk
        self._submit(job, seq, chunk)

    def _submit(self, job: Job, seq: int, chunk: Chunk) -> None:
        """Write segment `seq` on the writer thread; it leaves memory once indexed. A failed write
        stays in memory (still answered) and is retried by the flusher and on close."""
        rows = len(chunk[0])
        self._writing_rows += rows
        names = list(job.names.names)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._writer, self._write_segment, job, seq, chunk, names)
        self._writes.add(future)

        def done(f: asyncio.Future) -> None:
            self._writes.discard(f)
            self._writing_rows -= rows
            self._room.set()
            if f.cancelled() or f.exception() is not None:
                log.error("telemetry segment %d of job %s not written (kept in memory, will retry): %s",
                          seq, job.job_id, f.exception() if not f.cancelled() else "cancelled")
                job.failed.add(seq)
                return
            job.writing.pop(seq, None)

        future.add_done_callback(done)

    def _retry_failed(self) -> None:
        """Submit again the segments whose write failed."""
        for job in list(self._jobs.values()):
            for seq in sorted(job.failed):
                job.failed.discard(seq)
                self._submit(job, seq, job.writing[seq])

    def _write_segment(self, job: Job, seq: int, chunk: Chunk, names: list[str]) -> None:
        """(writer thread) Encode, upload and index one segment."""
        data, info = encode_segment(chunk, names, job.codec)
        key = f"{_key_part(job.batch_id)}/{_key_part(job.job_id)}/{seq:08d}.parquet"
        store_url = job.store_url
        if store_url and self._unreachable.get(store_url, 0.0) > time.monotonic():
            store_url = ""  # failed a moment ago: do not wait for it again for every segment
        try:
            self._object_store(store_url).put(key, data)
        except Exception as exc:
            if not store_url:
                raise
            # the batch's bucket is unreachable: keep the segment in the data dir rather than lose it
            log.warning("telemetry segments for %s go to the data dir for %.0f s: writing %s failed (%s)",
                        store_url, BUCKET_RETRY_S, key, str(exc).splitlines()[0])
            self._unreachable[store_url] = time.monotonic() + BUCKET_RETRY_S
            store_url = ""
            self._object_store(store_url).put(key, data)
        with self._lock:
            self._index.execute(
                "INSERT OR REPLACE INTO telemetry_segments VALUES (?,?,?,?,?,?,?,?,?)",
                (job.job_id, seq, key, store_url, json.dumps(info.variables), info.min_ns, info.max_ns, info.rows,
                 len(data)),
            )

    # ------------------------------------------------------------ reading

    def segments(self, job_id: str) -> list[dict[str, Any]]:
        """The index rows of a job's segments, in write order."""
        with self._lock:
            rows = self._index.execute(
                "SELECT seq, key, store_url, variables, min_ns, max_ns, rows, bytes FROM telemetry_segments"
                " WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
        return [dict(seq=r[0], key=r[1], store_url=r[2], variables=json.loads(r[3]), min_ns=r[4], max_ns=r[5],
                     rows=r[6], bytes=r[7]) for r in rows]

    async def arrays(self, job_id: str, variables: list[str], start_ns: int | None, end_ns: int | None) -> Arrays:
        """Every stored point of the job's `variables` (all when empty) in the window, by name."""
        wanted = set(variables) or None
        job = self._jobs.get(job_id)
        names = job.names if job is not None else Dictionary()
        parts: dict[int, Chunk] = {}
        if job is not None:  # memory first, then the index: a segment leaves memory only once indexed
            parts.update(job.writing)
            parts[job.next_seq] = concat(job.tail)
        for seg in self.segments(job_id):
            if seg["seq"] in parts:
                continue
            if (start_ns is not None and seg["max_ns"] < start_ns) or (end_ns is not None and seg["min_ns"] > end_ns):
                continue
            if wanted is not None and wanted.isdisjoint(seg["variables"]):
                continue
            data = await self._object_store(seg["store_url"]).get_async(seg["key"])
            self.segments_read += 1
            parts[seg["seq"]] = in_job_codes(await asyncio.to_thread(decode_segment, data), names, wanted)
        codes, ts, values = latest_sorted(_only(concat([parts[s] for s in sorted(parts)]), names, wanted))
        keep = np.ones(len(ts), bool)
        if start_ns is not None:
            keep &= ts >= start_ns
        if end_ns is not None:
            keep &= ts <= end_ns
        codes, ts, values = codes[keep], ts[keep], values[keep]
        out: Arrays = {}
        bounds = np.flatnonzero(np.diff(codes)) + 1
        for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(codes)], strict=True):
            if hi > lo:
                out[names.names[codes[lo]]] = (ts[lo:hi], values[lo:hi])
        return dict(sorted(out.items()))

    async def query(self, job_id: str, variables: list[str], start_ns: int | None, end_ns: int | None,
                    limit: int) -> Series:
        """Series by variable name, ascending in time, at most `limit` points each (0 = all)."""
        found = await self.arrays(job_id, variables, start_ns, end_ns)
        end = limit or None
        return {name: (ts[:end].tolist(), vs[:end].tolist()) for name, (ts, vs) in found.items()}

    async def batch_jobs(self, batch_id: str) -> list[str]:
        """The jobs of a batch that have telemetry, sorted."""
        with self._lock:
            rows = self._index.execute("SELECT job_id FROM telemetry_jobs WHERE batch_id = ?", (batch_id,)).fetchall()
        jobs = {r[0] for r in rows} | {j.job_id for j in self._jobs.values() if j.batch_id == batch_id}
        return sorted(jobs)

    async def export_rows(self, job_id: str, batch_id: str, variables: list[str], start_ns: int | None,
                          end_ns: int | None) -> AsyncIterator[list[tuple[str, int, str, float]]]:
        """Pages of (job_id, timestamp_ns, variable, value) rows of one job (or of every job of
        `batch_id` when `job_id` is empty), ordered by job, variable and time."""
        for job in [job_id] if job_id else await self.batch_jobs(batch_id):
            for name, (ts, values) in (await self.arrays(job, variables, start_ns, end_ns)).items():
                for lo in range(0, len(ts), EXPORT_PAGE_ROWS):
                    t = ts[lo : lo + EXPORT_PAGE_ROWS].tolist()
                    v = values[lo : lo + EXPORT_PAGE_ROWS].tolist()
                    yield list(zip([job] * len(t), t, [name] * len(t), v, strict=True))


def _only(chunk: Chunk, names: Dictionary, wanted: set[str] | None) -> Chunk:
    """The rows of `wanted` variables (all when None)."""
    if wanted is None:
        return chunk
    codes = np.array([names.codes[n] for n in wanted if n in names.codes], np.int32)
    keep = np.isin(chunk[0], codes)
    return chunk[0][keep], chunk[1][keep], chunk[2][keep]


def _key_part(name: str) -> str:
    """An id as one safe key segment."""
    part = quote(name or "_", safe="-_")
    return "_" + part if part.startswith(".") else part

"""Columnar telemetry: published messages to column arrays, and Parquet segments.

A job's telemetry is a long table of (variable, timestamp_ns, value) rows. In
memory a chunk is three numpy arrays: variable codes (int32, the job's own
dictionary), timestamps (int64) and values (float64). A segment is one Parquet
file of such rows, sorted by variable then time, with a later write of the same
(variable, timestamp) winning; its `variable` column is dictionary-encoded.
Nothing here imports grpc or touches storage.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]  # codes, timestamps_ns, values


class Dictionary:
    """Variable name <-> code for one job."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: list[str] = []
        self.codes: dict[str, int] = {}
        for name in names:
            self.code(name)

    def code(self, name: str) -> int:
        code = self.codes.get(name)
        if code is None:
            code = self.codes[name] = len(self.names)
            self.names.append(name)
        return code


def chunk_of_request(request: Any, names: Dictionary) -> Chunk | None:
    """The finite values of a PublishRequest's samples and blocks as one chunk, or None if empty."""
    parts: list[Chunk] = []
    if request.samples:
        parts.append(_chunk_of_samples(request.samples, names))
    for block in request.blocks:
        n, k = len(block.timestamps_ns), len(block.variables)
        if not n or not k:
            continue
        ts = np.fromiter(block.timestamps_ns, np.int64, n)
        values = np.fromiter(block.values, np.float64, n * k).reshape(n, k)
        codes = np.array([names.code(v) for v in block.variables], np.int32)
        parts.append((np.repeat(codes, n), np.tile(ts, k), values.T.ravel()))
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return None
    codes, ts, values = (np.concatenate(c) for c in zip(*parts, strict=True)) if len(parts) > 1 else parts[0]
    finite = np.isfinite(values)
    if not finite.all():
        codes, ts, values = codes[finite], ts[finite], values[finite]
    return (codes, ts, values) if len(codes) else None


def _chunk_of_samples(samples: Sequence[Any], names: Dictionary) -> Chunk:
    codes: list[int] = []
    ts: list[int] = []
    values: list[float] = []
    code = names.code
    for sample in samples:
        for name, value in sample.values.items():
            codes.append(code(name))
            ts.append(sample.timestamp_ns)
            values.append(value)
    return np.array(codes, np.int32), np.array(ts, np.int64), np.array(values, np.float64)


def concat(chunks: Sequence[Chunk]) -> Chunk:
    """Chunks in order as one."""
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:
        return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64)
    return tuple(np.concatenate(c) for c in zip(*chunks, strict=True))  # type: ignore[return-value]


def latest_sorted(chunk: Chunk) -> Chunk:
    """Rows sorted by (code, timestamp), keeping the LAST written value of a repeated pair."""
    codes, ts, values = chunk
    if not len(codes):
        return chunk
    order = np.lexsort((ts, codes))  # stable: equal keys keep write order
    codes, ts, values = codes[order], ts[order], values[order]
    last = np.ones(len(codes), bool)
    last[:-1] = (codes[1:] != codes[:-1]) | (ts[1:] != ts[:-1])
    return codes[last], ts[last], values[last]


@dataclass(frozen=True)
class SegmentInfo:
    """What the index keeps about one segment."""

    variables: list[str]
    min_ns: int
    max_ns: int
    rows: int


def encode_segment(chunk: Chunk, names: Sequence[str], codec: str) -> tuple[bytes, SegmentInfo]:
    """A Parquet file of the chunk (sorted, latest value per (variable, timestamp))."""
    codes, ts, values = latest_sorted(chunk)
    used = np.unique(codes)
    remap = np.full(len(names), -1, np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    seg_names = [names[c] for c in used]
    variable = pa.DictionaryArray.from_arrays(pa.array(remap[codes], pa.int32()), pa.array(seg_names, pa.string()))
    table = pa.table({"variable": variable, "timestamp_ns": pa.array(ts), "value": pa.array(values)})
    out = io.BytesIO()
    pq.write_table(table, out, compression=codec, row_group_size=1 << 20)
    info = SegmentInfo(seg_names, int(ts.min()), int(ts.max()), len(ts))
    return out.getvalue(), info


def warm_up(codec: str) -> None:
    """Encode and decode a one-row segment: pays, at start-up, what the first job's segment would
    (pyarrow imports pandas the first time it builds a table, about 0.4 s of CPU, plus the codec)."""
    chunk = (np.zeros(1, np.int32), np.ones(1, np.int64), np.zeros(1, np.float64))
    decode_segment(encode_segment(chunk, ["warm-up"], codec)[0])


def decode_segment(data: bytes) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """A Parquet segment's variable names, and its rows as (name index, timestamp, value) arrays."""
    table = pq.read_table(io.BytesIO(data))
    variable = table.column("variable").combine_chunks()
    if not isinstance(variable, pa.DictionaryArray):
        variable = variable.dictionary_encode()
    indices = variable.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    return variable.dictionary.to_pylist(), indices, table.column("timestamp_ns").to_numpy(), \
        table.column("value").to_numpy()


def in_job_codes(decoded: tuple[list[str], np.ndarray, np.ndarray, np.ndarray], names: Dictionary,
                 wanted: set[str] | None) -> Chunk:
    """A decoded segment as a chunk in the job's codes, only the `wanted` variables (all when None)."""
    seg_names, indices, ts, values = decoded
    remap = np.array([names.code(n) if wanted is None or n in wanted else -1 for n in seg_names] or [-1], np.int32)
    codes = remap[indices]
    keep = codes >= 0
    if not keep.all():
        codes, ts, values = codes[keep], ts[keep], values[keep]
    return codes, ts, values

"""The batch's `telemetry.storage.compression`, checked once for the scheduler and ingest.

Telemetry segments are Parquet files; the names a user may give map to Parquet
codecs. The empty string is the default (zstd).
"""

from __future__ import annotations

DEFAULT_COMPRESSION = "zstd"
PARQUET_CODECS = {
    "": DEFAULT_COMPRESSION,
    "none": "none",
    "gzip": "gzip",
    "zstd": "zstd",
    "snappy": "snappy",
    "lz4": "lz4",
    "brotli": "brotli",
}


def parquet_codec(compression: str) -> str:
    """The Parquet codec for a telemetry.storage.compression value; ValueError for an unknown one."""
    try:
        return PARQUET_CODECS[compression.strip().lower()]
    except KeyError:
        choices = ", ".join(repr(c) for c in PARQUET_CODECS if c)
        raise ValueError(f"must be one of {choices} (or empty for {DEFAULT_COMPRESSION}), "
                         f"not {compression!r}") from None

"""Samples of a telemetry PublishRequest, whether sent one by one or column-wise.

A `PublishRequest` carries samples as `TelemetrySample` messages (`samples`) and
as columnar `SampleBlock`s (`blocks`: variables, timestamps, row-major values),
in that order. These helpers read both without importing the protos, so the
runner and telemetry-ingest count and iterate them the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def block_rows(block: Any) -> int:
    """The number of samples (rows) in one SampleBlock."""
    return len(block.timestamps_ns)


def sample_count(request: Any) -> int:
    """Samples in a PublishRequest: its TelemetrySamples plus every block's rows."""
    return len(request.samples) + sum(len(b.timestamps_ns) for b in request.blocks)


def iter_samples(request: Any) -> Iterator[tuple[int, dict[str, float]]]:
    """(timestamp_ns, {variable: value}) of every sample of a PublishRequest, in order."""
    for sample in request.samples:
        yield sample.timestamp_ns, dict(sample.values)
    for block in request.blocks:
        yield from iter_block(block)


def iter_block(block: Any) -> Iterator[tuple[int, dict[str, float]]]:
    """(timestamp_ns, {variable: value}) of every row of one SampleBlock."""
    names = list(block.variables)
    width = len(names)
    values = list(block.values)
    for i, ts in enumerate(block.timestamps_ns):
        yield ts, dict(zip(names, values[i * width : (i + 1) * width], strict=True))

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


def block_problem(block: Any) -> str | None:
    """Why a SampleBlock cannot be read (values not rows x variables, a repeated variable), or None."""
    width, rows = len(block.variables), len(block.timestamps_ns)
    if len(block.values) != rows * width:
        return f"has {len(block.values)} values for {rows} timestamps x {width} variables"
    if len(set(block.variables)) != width:
        return "names a variable twice"
    return None


def drop_malformed_blocks(request: Any) -> int:
    """Remove the unreadable blocks of a PublishRequest; return the samples (rows) they held."""
    bad = [i for i, block in enumerate(request.blocks) if block_problem(block) is not None]
    rows = sum(len(request.blocks[i].timestamps_ns) for i in bad)
    for i in reversed(bad):
        del request.blocks[i]
    return rows

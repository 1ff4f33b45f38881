"""A job's scalar outputs: the numbers, booleans and short strings of TETRYX_OUTPUT_DIR/summary.json,
nested keys flattened with dots. A missing, malformed or oversized file is no error: no outputs and
a note saying why."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

from lynx.common.v1 import parameters_pb2 as ppb
from lynx_common.columns import parameter_value

SUMMARY = "summary.json"
MAX_SUMMARY_BYTES = 1 << 20
MAX_TEXT_CHARS = 256
MAX_OUTPUTS = 1000
_INT64 = (-(2**63), 2**63 - 1)


def flatten(document: dict, prefix: str = "") -> Iterable[tuple[str, object]]:
    """(dotted name, value) of every leaf in file order; lists and nulls are skipped."""
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, name + ".")
        elif value is not None and not isinstance(value, list):
            yield name, value


def scalar_outputs(document: object, keep: Iterable[str] = ()) -> tuple[list[ppb.Parameter], list[str]]:
    """The typed outputs of a parsed summary.json (only the names in `keep`, when given) and notes."""
    if not isinstance(document, dict):
        return [], [f"{SUMMARY} is not a JSON object; no outputs"]
    wanted = set(keep)
    outputs: list[ppb.Parameter] = []
    notes: list[str] = []
    skipped_text = skipped_number = 0
    for name, value in flatten(document):
        if wanted and name not in wanted:
            continue
        if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
            skipped_text += 1
            continue
        if isinstance(value, float) and not math.isfinite(value):
            skipped_number += 1
            continue
        if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
            value = float(value)
        if len(outputs) == MAX_OUTPUTS:
            notes.append(f"{SUMMARY} has more than {MAX_OUTPUTS} scalars; the first {MAX_OUTPUTS} are kept")
            break
        outputs.append(ppb.Parameter(name=name, value=parameter_value(value)))
    if skipped_text:
        notes.append(f"{skipped_text} strings longer than {MAX_TEXT_CHARS} characters were skipped")
    if skipped_number:
        notes.append(f"{skipped_number} non-finite numbers (NaN, Infinity) were skipped")
    missing = sorted(wanted - {o.name for o in outputs})
    if missing and len(outputs) < MAX_OUTPUTS:
        notes.append(f"results.outputs not in {SUMMARY}: {', '.join(missing)}")
    return outputs, notes


def read_outputs(output_dir: Path, keep: Iterable[str] = ()) -> tuple[list[ppb.Parameter], list[str]]:
    """Outputs and notes from output_dir/summary.json (blocking file I/O: call it off the event loop)."""
    path = output_dir / SUMMARY
    try:
        if path.is_symlink() or not path.is_file():
            return [], [f"{SUMMARY} is missing; no outputs"]
        size = path.stat().st_size
        if size > MAX_SUMMARY_BYTES:
            return [], [f"{SUMMARY} is {size} bytes, over the {MAX_SUMMARY_BYTES} byte limit; no outputs"]
        return scalar_outputs(json.loads(path.read_bytes()), keep)
    except (OSError, ValueError) as exc:
        return [], [f"{SUMMARY} cannot be read as JSON ({exc}); no outputs"]
    except RecursionError:
        return [], [f"{SUMMARY} is nested too deeply; no outputs"]

"""The run config a scenario reads from TETRYX_RUN_CONFIG: one definition for leases and previews."""

from __future__ import annotations

import csv
import io
import json
import secrets
from datetime import UTC, datetime

from lynx_common.errors import ValidationError

DEFAULT_SAMPLING_METHOD = "latin_hypercube"
# Seeds travel in JSON run configs: keep them exact as IEEE doubles.
MAX_SEED = 2**53 - 1


def check_seed(seed: int) -> None:
    """A batch seed must be a whole number a JSON reader keeps exact (ValidationError otherwise)."""
    if not 0 <= seed <= MAX_SEED:
        raise ValidationError("monte_carlo.seed", f"must be between 0 and {MAX_SEED}, got {seed}")


def new_seed() -> int:
    """A fresh batch seed for a config that has none (52 random bits: exact as a double)."""
    return secrets.randbits(52)


def iso(ts: float) -> str:
    """UTC ISO-8601 with a Z, as in the tutorial."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_config(
    run_id: int,
    parameters: dict[str, object],
    *,
    simulation_name: str,
    simulation_version: str,
    duration_minutes: float,
    sampling_method: str,
    generated_at: float,
    ids: dict[str, object],
) -> dict:
    """`{"run_id", "parameters", "metadata"}`; `parameters` keep their declared order and types
    (int stays int, str stays str); `ids` (batch_id, job_id, batch_seed, seed, ...) join the metadata."""
    return {
        "run_id": run_id,
        "parameters": parameters,
        "metadata": {
            "simulation_name": simulation_name,
            "simulation_version": simulation_version,
            "duration_minutes": duration_minutes,
            "sampling_method": sampling_method or DEFAULT_SAMPLING_METHOD,
            "generated_at": iso(generated_at),
            **ids,
        },
    }


def run_config_json(run_id: int, parameters: dict[str, object], **fields) -> str:
    """run_config() as the JSON text the runner writes verbatim."""
    return json.dumps(run_config(run_id, parameters, **fields))


def run_configs_csv(run_configs: list[dict]) -> str:
    """Run configs as CSV: run_id, seed, then one column per parameter in declared order."""
    out = io.StringIO()
    names = list(run_configs[0]["parameters"]) if run_configs else []
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", "seed", *names])
    for doc in run_configs:
        params = doc["parameters"]
        writer.writerow([doc["run_id"], doc["metadata"].get("seed", ""), *(params[n] for n in names)])
    return out.getvalue()

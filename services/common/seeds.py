"""Per-run seeds: derived from (batch seed, run_id), the same on every machine and every attempt."""

from __future__ import annotations

import numpy as np

# Seeds travel in JSON run configs; keep them exact as IEEE doubles.
SEED_BITS = 53


def run_seed(batch_seed: int, run_id: int) -> int:
    """The seed of run `run_id` for the scenario's own randomness: SeedSequence(batch_seed,
    spawn_key=(run_id,)), the child numpy's `spawn` would give, folded to 53 bits."""
    state = np.random.SeedSequence(batch_seed, spawn_key=(run_id,)).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(64 - SEED_BITS))

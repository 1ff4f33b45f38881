"""Per-run seeds: the vectorised `run_seeds` gives exactly what numpy's SeedSequence gives."""

from __future__ import annotations

import numpy as np
import pytest

from lynx_sampler.seeds import run_seed, run_seeds


@pytest.mark.parametrize("batch_seed", [0, 1, 42, 2**32 - 1, 2**32, 2**52 + 7, 2**63 - 1])
def test_run_seeds_match_seed_sequence_bit_for_bit(batch_seed):
    ids = np.array([0, 1, 2, 127, 128, 999, 65_535, 999_999, 2**31 - 1])
    assert run_seeds(batch_seed, ids).tolist() == [run_seed(batch_seed, int(i)) for i in ids]
    assert all(0 <= s < 2**53 for s in run_seeds(batch_seed, ids).tolist())


def test_run_seed_is_the_spawned_child_of_numpy(batch_seed=2024):
    child = np.random.SeedSequence(batch_seed).spawn(5)[4]
    state = int(child.generate_state(1, np.uint64)[0])
    assert run_seed(batch_seed, 4) == state >> 11


def test_run_seeds_differ_between_runs_and_batches():
    seeds = run_seeds(7, np.arange(10_000))
    assert len(set(seeds.tolist())) == 10_000
    assert not np.any(seeds == run_seeds(8, np.arange(10_000)))


def test_run_ids_outside_32_bits_are_refused():
    with pytest.raises(ValueError, match="run ids"):
        run_seeds(1, np.array([2**32 + 1]))

"""The fast wire encoding of SampleResponse chunks and the vectorised per-run seeds give exactly
what the protobuf API and SeedSequence give."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import struct_pb2
from sampler_cases import ALL

from lynx.sampler.v1 import sampler_service_pb2 as pb
from lynx_sampler import core
from lynx_sampler.encoding import encoded_chunks, varint, varint_table
from lynx_sampler.seeds import run_seed, run_seeds


@pytest.mark.parametrize("batch_seed", [0, 1, 42, 2**32 - 1, 2**32, 2**52 + 7, 2**63 - 1])
def test_run_seeds_match_seed_sequence_bit_for_bit(batch_seed):
    ids = np.array([0, 1, 2, 127, 128, 999, 65_535, 999_999, 2**31 - 1])
    assert run_seeds(batch_seed, ids).tolist() == [run_seed(batch_seed, int(i)) for i in ids]
    assert all(0 <= s < 2**53 for s in run_seeds(batch_seed, ids).tolist())


def test_run_seeds_differ_between_runs_and_batches():
    seeds = run_seeds(7, np.arange(10_000))
    assert len(set(seeds.tolist())) == 10_000
    assert not np.any(seeds == run_seeds(8, np.arange(10_000)))


def reference(sample: core.Sample, batch_seed: int, start: int, stop: int, header) -> pb.SampleResponse:
    """The chunk built through the protobuf API, the slow and obvious way."""
    sets = []
    for offset, row in enumerate(sample.rows(start, stop)):
        parameters = struct_pb2.Struct()
        parameters.update(row)
        run_id = sample.first_run_id + start + offset
        sets.append(pb.ParameterSet(run_id=run_id, parameters=parameters, seed=run_seed(batch_seed, run_id)))
    response = pb.SampleResponse(parameter_sets=sets)
    if header:
        response.total_runs = len(sample)
        response.warnings.extend(sample.warnings)
    return response


NUMERIC = [(name, spec) for name, spec in ALL if name != "choice"]
LONG = "a_very_long_parameter_name_" * 6  # a key longer than 127 bytes needs a two-byte length


@pytest.mark.parametrize(
    ("specs", "method", "runs", "existing"),
    [
        (NUMERIC, "random", 250, 0),
        (ALL, "latin_hypercube", 250, 0),
        (
            NUMERIC
            + [("k", {"type": "constant", "value": -0.0}), (LONG, {"type": "normal", "mean": 1e300, "std": 1e299})],
            "sobol",
            100,
            0,
        ),
        ([("θ_rad", {"type": "choice", "values": ["ä", "", 3.0, -1e-300]})], "halton", 100, 0),
        (ALL, "random", 120, 900_000),
    ],
)
def test_encoded_chunks_parse_to_the_messages_the_protobuf_api_builds(specs, method, runs, existing):
    sample = core.sample(specs, method, runs, seed=99, existing_runs=existing)
    chunks = [pb.SampleResponse.FromString(data) for data in encoded_chunks(sample, 99, chunk=100)]
    assert [len(c.parameter_sets) for c in chunks] == [min(100, runs - i) for i in range(0, runs, 100)]
    for i, chunk in enumerate(chunks):
        start = i * 100
        assert chunk == reference(sample, 99, start, min(start + 100, runs), header=i == 0)
    assert chunks[0].total_runs == runs and all(c.total_runs == 0 for c in chunks[1:])


def test_warnings_go_in_the_first_chunk_only():
    sample = core.sample(ALL, "sobol", 250, seed=3)
    chunks = [pb.SampleResponse.FromString(data) for data in encoded_chunks(sample, 3, chunk=100)]
    assert list(chunks[0].warnings) == list(sample.warnings) and len(sample.warnings) == 1
    assert [list(c.warnings) for c in chunks[1:]] == [[], []]


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16_383, 16_384, 2**31 - 1, 2**53 - 1])
def test_varint_table_gives_canonical_varints(value):
    table, mask = varint_table(np.array([value, 5], dtype=np.uint64))
    assert table[0][mask[0]].tobytes() == varint(value)
    assert b"\x18" + varint(value) == pb.ParameterSet(seed=value).SerializeToString() or value == 0


@pytest.mark.parametrize(
    "specs", [[("x", {"type": "normal", "mean": 0.0, "std": 1.0})], [("c", {"type": "choice", "values": ["a", 2.0]})]]
)
def test_single_parameter_chunks_are_byte_identical_to_serialize_to_string(specs):
    # with one Struct entry the map order cannot differ, so the bytes must match exactly
    sample = core.sample(specs, "random", 300, seed=0)
    (data,) = encoded_chunks(sample, 0, chunk=300)
    assert data == reference(sample, 0, 0, 300, header=True).SerializeToString()

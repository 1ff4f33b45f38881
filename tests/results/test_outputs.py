"""The runner's scalar outputs: what it keeps from summary.json, and what it notes instead of failing."""

from __future__ import annotations

import json

import pytest

from lynx_common.columns import value_of
from lynx_runner.config import load_config
from lynx_runner.outputs import MAX_OUTPUTS, MAX_SUMMARY_BYTES, read_outputs


def outputs_of(tmp_path, document, keep=()) -> tuple[dict, list[str]]:
    (tmp_path / "summary.json").write_text(document if isinstance(document, str) else json.dumps(document))
    outputs, notes = read_outputs(tmp_path, keep)
    return {o.name: value_of(o.value) for o in outputs}, notes


def test_numbers_booleans_and_short_strings_are_kept_with_nested_keys_flattened(tmp_path):
    got, notes = outputs_of(
        tmp_path,
        {
            "final_state": {"radius_km": 6871.5, "orbit": {"count": 3}},
            "decayed": False,
            "label": "LEO",
            "history": [1, 2, 3],
            "missing": None,
            "long": "x" * 300,
        },
    )
    assert got == {"final_state.radius_km": 6871.5, "final_state.orbit.count": 3, "decayed": False, "label": "LEO"}
    assert list(got) == ["final_state.radius_km", "final_state.orbit.count", "decayed", "label"]  # file order
    assert isinstance(got["final_state.orbit.count"], int) and got["decayed"] is False
    assert notes == ["1 strings longer than 256 characters were skipped"]


def test_results_outputs_keeps_only_the_named_outputs_and_notes_absent_ones(tmp_path):
    got, notes = outputs_of(tmp_path, {"a": 1, "b": {"c": 2.5}, "d": 3}, keep=["b.c", "zz"])
    assert got == {"b.c": 2.5}
    assert notes == ["results.outputs not in summary.json: zz"]


@pytest.mark.parametrize(
    "content, note",
    [
        (None, "summary.json is missing; no outputs"),
        ("{not json", "summary.json cannot be read as JSON"),
        ("[1, 2]", "summary.json is not a JSON object; no outputs"),
        ("[" * 100_000 + "]" * 100_000, "summary.json"),
    ],
)
def test_a_missing_or_malformed_summary_is_a_note_not_an_error(tmp_path, content, note):
    if content is not None:
        (tmp_path / "summary.json").write_text(content)
    outputs, notes = read_outputs(tmp_path)
    assert outputs == [] and len(notes) == 1 and notes[0].startswith(note)


def test_an_oversized_summary_is_not_read(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"pad": "x" * MAX_SUMMARY_BYTES}))
    outputs, notes = read_outputs(tmp_path)
    assert outputs == [] and "over the 1048576 byte limit" in notes[0]


def test_outputs_are_capped_with_a_note(tmp_path):
    got, notes = outputs_of(tmp_path, {f"k{i}": i for i in range(MAX_OUTPUTS + 5)})
    assert len(got) == MAX_OUTPUTS and got[f"k{MAX_OUTPUTS - 1}"] == MAX_OUTPUTS - 1
    assert notes == [f"summary.json has more than {MAX_OUTPUTS} scalars; the first {MAX_OUTPUTS} are kept"]


def test_non_finite_and_huge_numbers(tmp_path):
    got, notes = outputs_of(tmp_path, '{"nan": NaN, "inf": Infinity, "big": 1e400, "huge": 123456789012345678901234}')
    assert got == {"huge": 1.2345678901234568e23}
    assert notes == ["3 non-finite numbers (NaN, Infinity) were skipped"]


def test_upload_can_be_switched_off_by_yaml_or_environment(tmp_path):
    (tmp_path / "runner.yaml").write_text("upload_artifacts: true\nartifact_upload_limit: 10Mi\n")
    config = load_config(tmp_path / "runner.yaml", env={})
    assert config.upload_artifacts is True and config.artifact_upload_limit == 10 * 2**20
    assert load_config(tmp_path / "runner.yaml", env={"LYNX_RUNNER_UPLOAD_ARTIFACTS": "0"}).upload_artifacts is False
    assert load_config(None, env={}).upload_artifacts is True

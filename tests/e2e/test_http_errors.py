"""Bad input over HTTP: a 400 naming the field, never a stack trace or a hang."""

from __future__ import annotations

import copy

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda c: c["dispersions"]["eccentricity"]["distribution"].update(min=0.01, max=0.001),
         "dispersions.eccentricity.distribution.max", "greater than min"),
        (lambda c: c["dispersions"]["raan_deg"]["distribution"].update(type="zipf"),
         "dispersions.raan_deg.distribution.type", "unknown distribution"),
        (lambda c: c["dispersions"]["raan_deg"]["distribution"].pop("max"),
         "dispersions.raan_deg.distribution.max", "required"),
        (lambda c: c["monte_carlo"].update(sampling_method="best_guess"),
         "monte_carlo.sampling_method", "unknown method"),
        (lambda c: c["monte_carlo"].update(seed=-1), "monte_carlo.seed", "between"),
        (lambda c: c["early_termination"].update(
            enabled=True, conditions=[{"variable": "orbit.radius_km", "condition": "__import__('os')"}]),
         "early_termination.conditions[0].condition", "operator"),
        (lambda c: c["compute"].update(max_retries=-3), "compute.max_retries", "between"),
        (lambda c: c["dispersions"]["raan_deg"].update(distribution={"type": "triangular", "min": 0, "mode": 500,
                                                                     "max": 360}),
         "dispersions.raan_deg.distribution.mode", ""),
        (lambda c: c["monte_carlo"].update(correlation={"parameters": ["raan_deg", "nope"],
                                                        "matrix": [[1, 0.5], [0.5, 1]]}),
         "monte_carlo.correlation.parameters", "nope"),
        (lambda c: c["monte_carlo"].update(correlation={"parameters": ["raan_deg", "inclination_deg"],
                                                        "matrix": [[1, 0.5], [0.4, 1]]}),
         "monte_carlo.correlation.matrix", "symmetric"),
    ],
)
def test_invalid_config_is_a_400_naming_the_field(stack, tutorial_body, mutate, field, words):
    body = copy.deepcopy(tutorial_body)
    mutate(body["config"])
    status, reply = stack.http.call("POST", "/jobs", body)
    assert status == 400, reply
    assert reply["error"]["field"] == field
    assert reply["error"]["message"].startswith(field + " ")
    assert words in reply["error"]["message"]
    # Preview validates exactly as a submission does.
    status, reply = stack.http.call("POST", "/preview", {"config": body["config"]})
    assert status == 400 and reply["error"]["field"] == field


def test_malformed_bodies_are_400(stack, tutorial_body):
    status, reply = stack.http.call("POST", "/jobs", raw=b"{not json")
    assert status == 400 and "JSON" in reply["error"]["message"]
    status, reply = stack.http.call("POST", "/jobs", {**tutorial_body, "runs_override": "five"})
    assert status == 400 and reply["error"]["field"] == "runs_override"
    body = copy.deepcopy(tutorial_body)
    body["config"]["monte_carlo"]["runs"] = "many"
    status, reply = stack.http.call("POST", "/jobs", {**body, "runs_override": None})
    assert status == 400 and "runs" in reply["error"]["message"]


def test_unknown_ids_are_404(stack):
    for path in ("/batches/no-such-batch", "/jobs/no-such-job", "/runners/no-such-runner",
                 "/batches/no-such-batch/results"):
        status, reply = stack.http.call("GET", path)
        assert status == 404, path
        assert "not found" in reply["error"]["message"]

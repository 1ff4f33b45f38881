"""The REST JSON keeps the tutorial's shapes and words, and the OpenAPI document describes what is served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from jsonschema_rs import Draft202012Validator

from lynx.common.v1 import parameters_pb2 as par
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.errors import ValidationError
from lynx_common.rest import to_json
from lynx_gateway import convert
from lynx_gateway.openapi import SPEC

TUTORIAL = json.loads((Path(__file__).parents[1] / "e2e" / "tutorial_body.json").read_text())


def conforms(value: object, schema: dict) -> None:
    """Raise unless `value` matches `schema` (with the document's components)."""
    Draft202012Validator({**schema, "components": SPEC["components"]}, validate_formats=True).validate(value)


def component(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def test_a_submission_body_previews_as_it_is():
    """POST /preview takes the POST /jobs body unchanged (its name is accepted and unused)."""
    request = convert.preview_request(TUTORIAL)
    assert request.config == convert.submit_request(TUTORIAL).config
    with pytest.raises(ValidationError) as info:
        convert.preview_request({**TUTORIAL, "nmae": "x"})
    assert info.value.field == "nmae"


def test_the_tutorial_config_round_trips_and_matches_its_schema():
    config = convert.config_from_json(TUTORIAL["config"])
    assert [d.name for d in config.dispersions] == list(TUTORIAL["config"]["dispersions"])
    back = to_json(config)
    assert list(back["dispersions"]) == list(TUTORIAL["config"]["dispersions"])
    assert back["dispersions"]["eccentricity"] == TUTORIAL["config"]["dispersions"]["eccentricity"]
    assert isinstance(back["monte_carlo"]["seed"], int)  # int64 stays a JSON number
    conforms(TUTORIAL["config"], component("BatchConfig"))
    conforms(TUTORIAL, SPEC["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"])


def test_a_finished_batch_shows_the_tutorial_words():
    batch = pb.Batch(
        batch_id="b1", name="leo", status=pb.BATCH_STATUS_COMPLETED, total_jobs=3, seed=42,
        jobs_by_status=[pb.JobStatusCount(status=pb.JOB_STATUS_COMPLETED, count=2),
                        pb.JobStatusCount(status=pb.JOB_STATUS_FAILED, count=1)],
        failures_by_reason=[pb.TerminationReasonCount(reason=pb.TERMINATION_REASON_EARLY_TERMINATION, count=1)],
        created_at=Timestamp(seconds=1_700_000_000), early_terminated_jobs=1,
    )
    body = to_json(batch)
    assert body["batch"]["status"] == "Completed" and body["batch"]["batch_id"] == "b1"
    assert body["batch"]["created_at"] == "2023-11-14T22:13:20.000000Z" and body["batch"]["finished_at"] is None
    assert body["jobs_by_status"] == {"Pending": 0, "Running": 0, "Completed": 2, "Failed": 1, "Cancelled": 0}
    assert body["failures_by_reason"] == {"early_termination": 1}
    assert body["status_message"] is None and body["batch"]["config"] is None
    conforms(body, component("Batch"))
    extended = to_json(pb.ExtendBatchResponse(batch=batch, added_jobs=2, warnings=["sobol"]))
    assert extended["added_jobs"] == 2 and extended["warnings"] == ["sobol"] and extended["batch"]["seed"] == 42
    conforms(extended, SPEC["paths"]["/batches/{id}/extend"]["post"]["responses"]["200"]["content"][
        "application/json"]["schema"])


def test_a_job_keeps_parameter_types_and_order_and_its_attempts():
    values = [("raan_deg", par.ParameterValue(number=12.5)), ("count", par.ParameterValue(integer=7)),
              ("fuel", par.ParameterValue(text="hydrazine")), ("armed", par.ParameterValue(flag=True))]
    job = pb.Job(
        job_id="j1", batch_id="b1", run_id=4, status=pb.JOB_STATUS_FAILED, attempts=2, seed=99,
        parameters=[par.Parameter(name=n, value=v) for n, v in values],
        attempt_history=[pb.Attempt(attempt=1, outcome=pb.ATTEMPT_OUTCOME_RUNNER_LOST,
                                    termination_reason=pb.TERMINATION_REASON_RUNNER_LOST),
                         pb.Attempt(attempt=2, runner_id="r1", outcome=pb.ATTEMPT_OUTCOME_FAILED,
                                    termination_reason=pb.TERMINATION_REASON_EARLY_TERMINATION)],
        result=pb.JobResult(job_id="j1", exit_code=-9, attempt=2, error_message="killed",
                            termination_reason=pb.TERMINATION_REASON_EARLY_TERMINATION,
                            termination_variable="orbit.radius_km", termination_condition="< 6371",
                            termination_value=6370.0),
    )
    body = to_json(job)
    assert body["status"] == "Failed" and body["attempt_count"] == 2 and body["seed"] == 99
    assert list(body["parameters"].items()) == [("raan_deg", 12.5), ("count", 7), ("fuel", "hydrazine"),
                                                ("armed", True)]
    assert type(body["parameters"]["count"]) is int
    assert [(a["outcome"], a["termination_reason"], a["runner_id"]) for a in body["attempts"]] == [
        ("runner_lost", "runner_lost", None), ("failed", "early_termination", "r1")]
    assert body["result"]["termination_reason"] == "early_termination"
    assert body["result"]["termination"] == {"variable": "orbit.radius_km", "condition": "< 6371", "value": 6370.0}
    assert body["result"]["error_message"] == "killed"
    conforms(body, component("Job"))
    assert to_json(pb.JobResult(job_id="j2", success=True))["termination"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"config": {"dispersions": []}}, "config.dispersions"),
        ({"config": {}, "color": "red"}, "color"),
        ({"config": {"dispersions": {"x": {"distribution": {"type": "uniform", "min": 0, "max": 1, "mode": 2}}},
                     "monte_carlo": {"runs": "many"}}}, "config.monte_carlo.runs"),
        ({"config": {"dispersions": {"x": {"distribution": {"type": "uniform", "spread": 2}}}}},
         "config.dispersions.x.distribution.spread"),
        ({"config": {"dispersions": {"x": {"units": "m"}}}}, "config.dispersions.x.distribution"),
        ({"runs_override": 0, "config": TUTORIAL["config"]}, "runs_override"),
        ({"runs_override": 2**40, "config": TUTORIAL["config"]}, "runs_override"),
        ({"config": {**TUTORIAL["config"], "compute": {"max_retries": 1.5}}}, "config.compute.max_retries"),
    ],
)
def test_bad_bodies_name_the_field(body, field):
    with pytest.raises(ValidationError) as info:
        convert.submit_request(body)
    assert info.value.field == field
    assert str(info.value).startswith(field + " ")


def test_the_document_lists_every_distribution_the_sampler_knows():
    from lynx_sampler.distributions import TYPES, build_parameter

    variants = SPEC["components"]["schemas"]["Distribution"]["oneOf"]
    assert [v["properties"]["type"]["const"] for v in variants] == list(TYPES)
    for variant in variants:  # a field the document does not give a type is one the sampler refuses
        kind = variant["properties"]["type"]["const"]
        foreign = next(f for f in ("mode", "mean", "rate") if f not in variant["properties"])
        with pytest.raises(ValidationError, match="does not apply"):
            build_parameter("x", {"type": kind, foreign: 1.0}, "dispersions.x.distribution")
    uniform = variants[0]
    assert uniform["required"] == ["type", "min", "max"] and uniform["properties"]["min"] == {"type": "number"}


def test_every_route_describes_its_bodies():
    for path, ops in SPEC["paths"].items():
        for method, op in ops.items():
            assert op["responses"]["200"]["content"], (method, path)
            if method == "post" and path not in ("/batches/{id}/cancel", "/batches/{id}/rerun-failed",
                                                 "/tokens/{id}/revoke"):
                assert op["requestBody"]["content"]["application/json"]["schema"]["properties"], path
    Draft202012Validator({**component("BatchConfig"), "components": SPEC["components"]})  # a valid schema

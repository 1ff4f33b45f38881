"""schemathesis against the live gateway on the real stack: no 5xx, every response as the OpenAPI document says."""

from __future__ import annotations

import copy
import json
import urllib.request

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from lynx_cli.stack import Ports, Stack

pytestmark = pytest.mark.e2e


def errors_in_the_documented_shape(ctx, response, case) -> None:
    """Every 4xx/5xx answers JSON {"error": {"message": str, "field": str or null}} (docs/api.md)."""
    if response.status_code < 400:
        return
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "field"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert body["error"]["field"] is None or isinstance(body["error"]["field"], str), body


CHECKS = [not_a_server_error, response_schema_conformance, errors_in_the_documented_shape]
# Generated submissions stay small so a 2-core machine finishes in seconds: the run counts and
# grid levels the document allows go up to a million runs (the sampler's own tests cover those).
SMALL = 8
# The live stream answers until the client hangs up; it is fuzzed with ids that do not exist.
STREAM = "/batches/{id}/telemetry/stream"


def _cap(node: object) -> None:
    """Lower every run-count-like bound in a copy of the document (runs, runs_override, levels)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("runs", "runs_override", "levels", "limit") and isinstance(value, dict) and "maximum" in value:
                value["maximum"] = SMALL
            if key == "dispersions" and isinstance(value, dict) and value.get("type") == "object":
                value["maxProperties"] = 3
            _cap(value)
    elif isinstance(node, list):
        for value in node:
            _cap(value)


@pytest.fixture
def gateway(tmp_path_factory):
    """A fresh stack per test: the stateful test's narrowed document describes only the batches it submits."""
    stack = Stack(tmp_path_factory.mktemp("stack"), Ports(0, 0, 0, 0))
    stack.start()
    try:
        yield stack.ports.gateway_url
    finally:
        stack.stop()


@pytest.fixture
def document(gateway):
    with urllib.request.urlopen(f"{gateway}/openapi.json", timeout=10) as reply:
        served = json.load(reply)
    _cap(served["components"])
    _cap(served["paths"])
    return served


def _load(document: dict, base_url: str):
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.update(base_url=base_url)
    loaded.config.generation.update(max_examples=12, no_shrink=True, database="none")
    return loaded


@pytest.fixture
def schema(document, gateway):
    return _load(document, gateway)


@pytest.fixture
def accepted_submissions(document, gateway):
    """The document with configs narrowed to ones the services accept, so POST /jobs succeeds and its links
    (GET /batches/{id}, jobs, results, cancel, extend, ...) are followed with real ids."""
    narrowed = copy.deepcopy(document)
    schemas = narrowed["components"]["schemas"]
    schemas["BatchConfig"]["properties"] = {
        "monte_carlo": {"type": "object", "required": ["runs"], "additionalProperties": False, "properties": {
            "runs": {"type": "integer", "minimum": 1, "maximum": SMALL},
            "sampling_method": {"enum": ["random", "latin_hypercube"]},
            "seed": {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}}},  # chosen and echoed when absent
        "dispersions": {"type": "object", "required": ["x"], "additionalProperties": False, "properties": {
            "x": {"const": {"distribution": {"type": "uniform", "min": 0, "max": 1}}}}},
    }
    schemas["BatchConfig"]["required"] = ["monte_carlo", "dispersions"]
    return _load(narrowed, gateway)


SETTINGS = hypothesis.settings(
    max_examples=12, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)


def _fuzz(operation) -> None:
    """Run one operation's generated cases against the live gateway."""

    @SETTINGS
    @given(case=operation.as_strategy())
    def check(case):
        if operation.path == STREAM:
            case.path_parameters = {"id": "no-such-batch"}
        case.call_and_validate(checks=CHECKS, timeout=30)

    check()


def test_every_operation_stateless(schema):
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 38  # 28 REST operations (readyz, artifacts, results, tokens included), 10 dashboard
    for operation in operations:
        _fuzz(operation)


def test_linked_operations_stateful(accepted_submissions):
    machine = accepted_submissions.as_state_machine()

    class Workflow(machine):
        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

        def before_call(self, case):
            if case.path == STREAM:  # a live batch's stream runs until the client hangs up
                case.path_parameters = {"id": "no-such-batch"}

        def get_call_kwargs(self, case):
            return {"timeout": 30}


    assert "POST /jobs -> 200" in {str(name) for name in Workflow.bundles}  # its links are followed
    Workflow.run(settings=hypothesis.settings(SETTINGS, max_examples=10, stateful_step_count=6))

"""Preview, extend, rerun-failed and telemetry export over HTTP, on the real stack."""

from __future__ import annotations

import copy
import csv
import gzip
import io
import math

import pytest

pytestmark = pytest.mark.e2e


def test_preview_is_what_a_submission_runs(stack, tutorial_body):
    preview = stack.http.post("/preview", {"runs_override": 3, "config": tutorial_body["config"]})
    assert preview["seed"] == 42 and preview["total_runs"] == 3
    assert [doc["run_id"] for doc in preview["run_configs"]] == [0, 1, 2]
    first = preview["run_configs"][0]
    assert list(first["parameters"]) == list(tutorial_body["config"]["dispersions"])
    assert first["metadata"]["batch_seed"] == 42 and isinstance(first["metadata"]["seed"], int)

    status, headers, body = stack.http.raw_post("/preview?format=csv", {"runs_override": 3,
                                                                         "config": tutorial_body["config"]})
    assert status == 200 and headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [int(r["run_id"]) for r in rows] == [0, 1, 2]
    assert float(rows[1]["eccentricity"]) == preview["run_configs"][1]["parameters"]["eccentricity"]

    reply = stack.http.post("/jobs", {**tutorial_body, "runs_override": 3})
    stack.http.post(f"/batches/{reply['batch_id']}/cancel", {})
    jobs = stack.http.get(f"/batches/{reply['batch_id']}/jobs")["jobs"]
    assert [j["parameters"] for j in jobs] == [d["parameters"] for d in preview["run_configs"]]


def test_extend_refines_the_latin_hypercube_and_the_batch_completes(stack, tutorial_body):
    body = copy.deepcopy(tutorial_body)
    body["runs_override"] = 2
    reply = stack.http.post("/jobs", body)
    extended = stack.http.post(f"/batches/{reply['batch_id']}/extend", {"runs": 2})
    assert extended["added_jobs"] == 2 and extended["batch"]["total_jobs"] == 4
    final = stack.http.wait_batch(reply["batch_id"])
    assert final["batch"]["status"] == "Completed" and final["jobs_by_status"]["Completed"] == 4
    jobs = stack.http.get(f"/batches/{reply['batch_id']}/jobs")["jobs"]
    assert [j["run_id"] for j in jobs] == [0, 1, 2, 3]
    for name, spec in body["config"]["dispersions"].items():
        d = spec["distribution"]
        strata = {math.floor((j["parameters"][name] - d["min"]) / (d["max"] - d["min"]) * 4) for j in jobs}
        assert strata == {0, 1, 2, 3}, (name, strata)  # one point per stratum of the refined grid

    # The whole batch's telemetry as gzip-compressed CSV, every job in it.
    status, headers, data = stack.http.raw(f"/batches/{reply['batch_id']}/telemetry/export?compression=gzip")
    assert status == 200 and headers["content-type"] == "application/gzip"
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(data).decode())))
    assert {r["job_id"] for r in rows} == {j["job_id"] for j in jobs}
    assert {r["variable"] for r in rows} >= {"orbit.radius_km"}


def test_extend_and_rerun_errors(stack, tutorial_body):
    status, reply = stack.http.call("POST", "/batches/no-such-batch/extend", {"runs": 2})
    assert status == 404
    status, reply = stack.http.call("POST", "/batches/no-such-batch/extend", {"runs": 0})
    assert status == 400 and reply["error"]["field"] == "runs"
    status, reply = stack.http.call("POST", "/batches/no-such-batch/rerun-failed", {})
    assert status == 404


def test_rerun_failed_runs_the_failed_jobs_again_with_the_same_parameters(stack, tutorial_body):
    body = copy.deepcopy(tutorial_body)
    body["config"]["simulation"]["type"] = "always-fails"
    body["config"]["compute"]["max_retries"] = 0
    body["runs_override"] = 1
    reply = stack.http.post("/jobs", body)
    assert stack.http.wait_batch(reply["batch_id"], timeout=60)["batch"]["status"] == "Failed"
    (job,) = stack.http.get(f"/batches/{reply['batch_id']}/jobs")["jobs"]
    rerun = stack.http.post(f"/batches/{reply['batch_id']}/rerun-failed", {})
    assert rerun["requeued_jobs"] == 1
    final = stack.http.wait_batch(reply["batch_id"], timeout=60)
    assert final["batch"]["status"] == "Failed"
    again = stack.http.get(f"/jobs/{job['job_id']}")
    assert again["parameters"] == job["parameters"]
    assert [a["attempt"] for a in again["attempts"]] == [1, 2]

"""The tutorial, end to end: real services, real runners, the real Basilisk scenario."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

TUTORIAL_VARIABLES = {
    "orbit.radius_km",
    "orbit.speed_m_s",
    "orbit.semi_major_axis_km",
    "orbit.eccentricity",
    "orbit.inclination_deg",
    "orbit.true_anomaly_deg",
}
MU_EARTH = 3.986004418e14


def test_runner_advertises_tutorial_capabilities(stack):
    caps = stack.http.get("/runners/basilisk-runner-01")["capabilities"]
    assert caps["max_concurrent_jobs"] == 1
    assert caps["supported_simulation_types"] == ["basilisk", "orbit", "aerospace"]
    assert caps["gpu_available"] is False
    assert caps["memory_gb"] > 0 and caps["cpu_cores"] >= 1
    assert set(caps) == {"max_concurrent_jobs", "supported_simulation_types", "gpu_available", "memory_gb", "cpu_cores"}


def test_tutorial_batch_completes_with_artifacts_and_telemetry(stack, tutorial_body):
    reply = stack.http.post("/jobs", tutorial_body)
    assert set(reply) >= {"batch_id", "total_jobs", "estimated_completion_time_mins"}
    assert reply["total_jobs"] == 5 and reply["seed"] == 42
    assert reply["estimated_completion_time_mins"] is None

    mid = stack.http.get(f"/batches/{reply['batch_id']}")
    assert mid["batch"]["status"] in ("Pending", "Running", "Completed")
    assert set(mid["jobs_by_status"]) >= {"Pending", "Running", "Completed", "Failed"}
    assert sum(mid["jobs_by_status"].values()) == 5

    final = stack.http.wait_batch(reply["batch_id"])
    assert final["batch"]["status"] == "Completed"
    assert final["jobs_by_status"]["Completed"] == 5
    assert final["throughput_jobs_per_minute"] > 0
    # The study's report (docs/results.md): every section, the tutorial's outputs; kept beside the stack's files.
    report = stack.http.text(f"/batches/{reply['batch_id']}/report.html")
    for section in ("Runs", "Failure probability", "Outputs", "Sensitivity", "Convergence", "Failed runs"):
        assert f">{section}</h2>" in report
    assert "<h3>final_state.orbit.radius_km</h3>" in report and "basic-orbit-tutorial" in report
    (stack.output_root.parent / "report.html").write_text(report)

    results = stack.http.get(f"/batches/{reply['batch_id']}/results")
    assert len(results) == 5
    dispersions = tutorial_body["config"]["dispersions"]
    strata = {name: set() for name in dispersions}
    for result in results:
        assert result["success"] is True, result
        assert result["error_message"] is None
        assert result["metadata"]["engine"] == "basilisk"
        assert result["metadata"]["simulation_name"] == "Basic Orbit Tutorial"
        assert result["metadata"]["entrypoint"] == "scenarios/aerospace/python/scenario_basic_orbit_lynx.py"
        assert result["metadata"]["runner_id"] in {"basilisk-runner-01", "local-runner-01"}
        assert result["metadata"]["start"] == "warm"  # the tutorial config's defaults: a warm fork server
        assert stack.http.get(f"/jobs/{result['job_id']}/results") == result

        names = sorted(Path(p).name for p in result["output_files"])
        assert names == ["orbit_position.png", "summary.json", "trajectory.csv"]
        files = {Path(p).name: Path(p) for p in result["output_files"]}
        for path in files.values():
            assert path.is_absolute() and path.is_file()
            assert path.parent == stack.output_root / result["job_id"]

        described = {f["relative_path"]: f for f in result["files"]}
        assert set(described) == set(files)
        for name, path in files.items():
            assert described[name]["size_bytes"] == path.stat().st_size
            assert described[name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

        summary = json.loads(files["summary.json"].read_text())
        assert summary["success"] is True
        assert files["orbit_position.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        job = stack.http.get(f"/jobs/{result['job_id']}")
        params = job["parameters"]
        assert set(params) == set(dispersions)
        for name, value in params.items():
            d = dispersions[name]["distribution"]
            assert d["min"] <= value <= d["max"], (name, value)
            strata[name].add(math.floor((value - d["min"]) / (d["max"] - d["min"]) * 5))

        a = params["semi_major_axis_m"]
        duration_s = params["duration_orbits"] * 2 * math.pi * math.sqrt(a**3 / MU_EARTH)
        with files["trajectory.csv"].open() as f:
            rows = list(csv.reader(f))[1:]
        assert abs(len(rows) - duration_s / 10) <= 2, (len(rows), duration_s)

        telemetry = stack.http.get(f"/jobs/{result['job_id']}/telemetry")
        assert set(telemetry["series"]) == TUTORIAL_VARIABLES
        radius = telemetry["series"]["orbit.radius_km"]
        assert len(radius["values"]) >= len(rows) - 1
        assert all(6300 < r < 7200 for r in radius["values"])
        assert result["telemetry_samples_sent"] >= len(radius["values"])
        assert result["telemetry_samples_dropped"] == 0

        # The CSV export holds the same samples as the query, gzip-compressed as the config's
        # telemetry.storage.compression asks.
        status, headers, data = stack.http.raw(f"/jobs/{result['job_id']}/telemetry/export?variable=orbit.radius_km")
        assert status == 200 and headers["content-type"] == "application/gzip"
        lines = gzip.decompress(data).decode().splitlines()
        assert lines[0] == "job_id,timestamp_ns,variable,value"
        assert [float(line.split(",")[3]) for line in lines[1:]] == radius["values"]
    # Latin Hypercube: 5 runs fall in 5 distinct equal-width strata of every parameter.
    assert all(len(s) == 5 for s in strata.values()), strata

    # Outputs and artifacts left the runner host: with its output_root gone, every file still
    # downloads through the gateway, byte for byte.
    shutil.rmtree(stack.output_root)
    for result in results:
        assert result["outputs"]["success"] is True and result["outputs"]["final_state.orbit.radius_km"] > 6000
        assert result["notes"] == []
        described = {f["relative_path"]: f["sha256"] for f in result["files"]}
        assert {a["name"]: a["sha256"] for a in result["artifacts"]} == described
        for artifact in result["artifacts"]:
            status, headers, data = stack.http.raw(f"/jobs/{result['job_id']}/artifacts/{artifact['name']}")
            assert status == 200 and hashlib.sha256(data).hexdigest() == artifact["sha256"]
            assert len(data) == artifact["size"] and headers["etag"] == f'"{artifact["sha256"]}"'
        status, _, _ = stack.http.raw(f"/jobs/{result['job_id']}/artifacts/..%2f..%2fscheduler.db")
        assert status == 400


def test_cancel_ends_every_job_and_same_seed_gives_same_runs(stack, tutorial_body):
    batches = [stack.http.post("/jobs", tutorial_body)["batch_id"] for _ in range(2)]
    for batch_id in batches:
        reply = stack.http.post(f"/batches/{batch_id}/cancel", {})
        assert reply["cancelled_jobs"] >= 1
    sampled = []
    for batch_id in batches:
        final = stack.http.wait_batch(batch_id, timeout=60)
        assert final["batch"]["status"] == "Cancelled"
        assert final["batch"]["seed"] == 42
        assert final["jobs_by_status"]["Pending"] == 0 and final["jobs_by_status"]["Running"] == 0
        # Every job ends with exactly one final result, cancelled ones included.
        results = stack.http.get(f"/batches/{batch_id}/results")
        assert len(results) == 5
        jobs = stack.http.get(f"/batches/{batch_id}/jobs")["jobs"]
        assert [j["run_id"] for j in jobs] == [0, 1, 2, 3, 4]
        sampled.append([j["parameters"] for j in jobs])
    # The same config and seed give the same run configurations, run by run.
    assert sampled[0] == sampled[1]


def test_early_termination_kills_every_scenario(stack, tutorial_body):
    config = tutorial_body["config"]
    config["early_termination"] = {
        "enabled": True,
        "check_frequency_hz": 10.0,
        "conditions": [
            {"variable": "orbit.radius_km", "condition": "> 6000", "description": "always true in LEO"}
        ],
    }
    reply = stack.http.post("/jobs", tutorial_body)
    final = stack.http.wait_batch(reply["batch_id"])
    assert final["batch"]["status"] == "Failed"
    assert final["jobs_by_status"]["Failed"] == 5
    assert final["early_terminated_jobs"] == 5  # counted apart from crashes and timeouts
    results = stack.http.get(f"/batches/{reply['batch_id']}/results")
    assert len(results) == 5
    for result in results:
        assert result["success"] is False
        assert result["termination_reason"] == "early_termination"
        assert "orbit.radius_km > 6000" in result["error_message"]
        assert "always true in LEO" in result["error_message"]
        assert result["exit_code"] == -9  # SIGKILL
        assert result["termination"]["variable"] == "orbit.radius_km"
        assert result["termination"]["condition"].replace(" ", "") == ">6000"
        assert result["termination"]["value"] > 6000
        # Killed before it finished: the summary is the scenario's last write.
        assert not (stack.output_root / result["job_id"] / "summary.json").exists()
        # The condition is the study's answer, not a fault: no retry.
        job = stack.http.get(f"/jobs/{result['job_id']}")
        assert job["attempt_count"] == 1 and [a["attempt"] for a in job["attempts"]] == [1]


def test_failing_scenario_is_retried_then_reported_with_stderr(stack, tutorial_body):
    config = tutorial_body["config"]
    config["simulation"]["type"] = "always-fails"
    config["compute"]["max_retries"] = 2
    tutorial_body["runs_override"] = 2
    started = time.monotonic()
    reply = stack.http.post("/jobs", tutorial_body)
    final = stack.http.wait_batch(reply["batch_id"], timeout=120)
    assert final["batch"]["status"] == "Failed"
    assert final["jobs_by_status"]["Failed"] == 2
    for result in stack.http.get(f"/batches/{reply['batch_id']}/results"):
        job = stack.http.get(f"/jobs/{result['job_id']}")
        assert job["status"] == "Failed"
        assert job["attempt_count"] == 3  # first try + max_retries
        assert [a["attempt"] for a in job["attempts"]] == [1, 2, 3]
        assert all(a["exit_code"] == 1 and a["ended_at"] for a in job["attempts"])
        assert result["metadata"]["runner_id"] == "failing-runner"
        assert result["exit_code"] == 1
        assert "exited with code 1" in result["error_message"]
        assert "FATAL: deliberate failure for the retry test" in result["error_message"]
        assert [Path(p).name for p in result["output_files"]] == ["partial.txt"]
    assert time.monotonic() - started < 120


def test_memory_request_is_enforced_on_the_runner(stack, tutorial_body):
    config = tutorial_body["config"]
    config["compute"]["container"]["memory_request"] = "50Mi"  # far below what Python + Basilisk need
    config["compute"]["max_retries"] = 0
    tutorial_body["runs_override"] = 1
    reply = stack.http.post("/jobs", tutorial_body)
    final = stack.http.wait_batch(reply["batch_id"], timeout=120)
    assert final["batch"]["status"] == "Failed"
    (result,) = stack.http.get(f"/batches/{reply['batch_id']}/results")
    assert result["termination_reason"] == "out_of_memory", result
    assert "memory" in result["error_message"]

"""A second simulator on the same control plane: a RocketPy runner beside a Basilisk runner, each batch
routed by simulation.type to its own runner, RocketPy's outputs in its results."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from ci_harness import REPO, lynx

from lynx_cli import stack as lynx_stack

pytestmark = pytest.mark.e2e
pytest.importorskip("rocketpy", reason="the rocketpy extra is not installed (pip install 'lynx[rocketpy]')")

ROCKET_STUDY = REPO / "scenarios/rocketry/configs/rocket_flight.yaml"
ORBIT_STUDY = REPO / "scenarios/aerospace/configs/basic_orbit_tutorial.yaml"


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=60) as reply:
        return json.load(reply)


def post(url: str, body: object) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.load(reply)


def wait(url: str, batch_id: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = get(f"{url}/batches/{batch_id}")
        if status["batch"]["status"] in ("Completed", "Failed", "Cancelled"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"batch {batch_id} unfinished after {timeout} s: {status}")


@pytest.fixture(scope="module")
def two_types(tmp_path_factory):
    """Every service, basilisk-runner-01 (configs/lynx-runner-basilisk.yaml) and rocketpy-runner-01."""
    root = tmp_path_factory.mktemp("two-types")
    env = {"LYNX_RUNNER_OUTPUT_ROOT": str(root / "runs")}
    runners = [
        lynx_stack.Runner("basilisk-runner-01", "Basilisk", REPO / "configs/lynx-runner-basilisk.yaml", env),
        lynx_stack.Runner("rocketpy-runner-01", "RocketPy", REPO / "configs/lynx-runner-rocketpy.yaml", env),
    ]
    stack = lynx_stack.Stack(root / "data", runners=runners, cwd=REPO, ready_timeout=120, stop_grace=10)
    stack.start()
    try:
        yield stack.ports.gateway_url, root
    finally:
        stack.stop()


def test_each_batch_runs_on_the_runner_of_its_simulation_type(two_types):
    url, root = two_types
    runners = {r["runner_id"]: r for r in get(f"{url}/runners")["runners"]}
    assert set(runners) == {"basilisk-runner-01", "rocketpy-runner-01"}
    rocket_config = yaml.safe_load(ROCKET_STUDY.read_text())
    rocket = post(f"{url}/jobs", {"name": "rocket", "runs_override": 3, "config": rocket_config})
    orbit = post(
        f"{url}/jobs", {"name": "orbit", "runs_override": 2, "config": yaml.safe_load(ORBIT_STUDY.read_text())}
    )
    # Both batches are in flight at once on one stack.
    assert {get(f"{url}/batches/{b['batch_id']}")["batch"]["status"] for b in (rocket, orbit)} <= {"Pending", "Running"}
    for batch, runner_id in ((rocket, "rocketpy-runner-01"), (orbit, "basilisk-runner-01")):
        final = wait(url, batch["batch_id"])
        jobs = get(f"{url}/batches/{batch['batch_id']}/jobs")["jobs"]
        assert {j["runner_id"] for j in jobs} == {runner_id}, (batch, final)
    rocket_jobs = get(f"{url}/batches/{rocket['batch_id']}/jobs")["jobs"]
    for job in rocket_jobs:
        result = job["result"]
        assert result["success"], result["error_message"]
        summary = json.loads(next(Path(f) for f in result["output_files"] if f.endswith("summary.json")).read_text())
        # A ~6 kN s motor on a 14 kg rocket: a few kilometres up, subsonic, landing downwind.
        assert 1500 < summary["apogee_m"] < 4500
        assert 150 < summary["max_speed_mps"] < 340
        assert summary["flight_time_s"] > summary["apogee_time_s"] > 10
        assert summary["landing_drift_m"] == pytest.approx(
            (summary["landing_x_m"] ** 2 + summary["landing_y_m"] ** 2) ** 0.5
        )
        assert result["telemetry_samples_sent"] > 100
        # The outputs come back through the gateway, only those results.outputs names.
        assert result["outputs"] == {k: summary[k] for k in rocket_config["results"]["outputs"]}


def test_the_gate_judges_a_rocketpy_study(two_types, tmp_path):
    url, _ = two_types
    done = lynx(
        "submit", str(ROCKET_STUDY), "--runs", "2", "--wait", "--url", url, "--junit", str(tmp_path / "junit.xml")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("study passed: 2/2 runs succeeded")
    assert "parameter.impulse_scale" in (tmp_path / "junit.xml").read_text()


def test_a_rocket_leaving_the_safety_box_is_stopped_early(two_types, tmp_path):
    url, _ = two_types
    config = yaml.safe_load(ROCKET_STUDY.read_text())
    config["early_termination"]["conditions"][0]["condition"] = "> 200"  # a box every flight leaves
    study = tmp_path / "tight_box.yaml"
    study.write_text(yaml.safe_dump(config))
    done = lynx("submit", str(study), "--runs", "2", "--wait", "--url", url, "--junit", str(tmp_path / "junit.xml"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0/2 runs succeeded, 2 failed, 2 early-terminated" in done.stdout.strip().splitlines()[-1]
    junit = (tmp_path / "junit.xml").read_text()
    assert junit.count('type="early_termination" message="early termination: flight.lateral_drift_m &gt; 200') == 2

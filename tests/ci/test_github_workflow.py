"""examples/ci/github-actions.yml, run step by step as a GitHub runner would, in a temporary checkout."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ci_harness import REPO

pytestmark = pytest.mark.e2e
pytest.importorskip("rocketpy", reason="the example's study needs the rocketpy extra")

WORKFLOW = REPO / "examples/ci/github-actions.yml"
FAILING_SCENARIO = "import sys\nprint('guidance diverged', file=sys.stderr)\nsys.exit(1)\n"


def checkout(tmp: Path) -> Path:
    """The files of the repository a workflow reads (study, runner config, scenario), as a fresh checkout."""
    work = tmp / "workspace"
    for folder in ("scenarios", "configs", "examples"):
        shutil.copytree(REPO / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return work


def run_job(work: Path, tmp: Path, **overrides: str) -> tuple[list[tuple[str, int, str, str]], Path]:
    """Every `run:` step of the job in order, with the job's env and the GITHUB_* variables a runner sets;
    stops at the first failing step, as Actions does. Returns [(step, exit code, stdout, stderr)], the step summary."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (job,) = workflow["jobs"].values()
    temp = tmp / "runner-temp"
    temp.mkdir()
    summary = temp / "step_summary.md"
    summary.touch()
    env = {
        **os.environ,
        **{k: str(v) for k, v in workflow.get("env", {}).items()},
        **overrides,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(work),
        "GITHUB_SHA": "0" * 40,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REPOSITORY": "team/flight-software",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_ENV": str(temp / "github_env"),
        "GITHUB_OUTPUT": str(temp / "github_output"),
        "RUNNER_TEMP": str(temp),
        # actions/setup-python puts its interpreter first on PATH; here, the one running the tests.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    ran = []
    for i, step in enumerate(job["steps"]):
        if "run" not in step:
            continue
        script = temp / f"step-{i}.sh"
        script.write_text(step["run"])
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=work,
            env={**env, **{k: str(v) for k, v in step.get("env", {}).items()}},
            capture_output=True,
            text=True,
            timeout=600,
        )
        ran.append((step.get("name", f"step {i}"), done.returncode, done.stdout, done.stderr))
        if done.returncode != 0:
            break
    return ran, summary


def test_a_passing_study_passes_the_check_and_writes_its_files(tmp_path):
    work = checkout(tmp_path)
    ran, summary = run_job(work, tmp_path, LYNX_RUNS="2")
    assert [step[:2] for step in ran] == [
        ("Install Lynx", 0),
        ("Run the study (stack and runner inside this job)", 0),
    ], ran[-1][2:]
    assert ran[-1][2].rstrip().splitlines()[-1].startswith("study passed: 2/2 runs succeeded")
    assert "warning" not in ran[-1][3], ran[-1][3]
    results = work / "lynx-results"
    assert (results / "junit.xml").read_text().count("<testcase ") == 2
    assert (results / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    header, *rows = csv.reader((results / "runs.csv").read_text().splitlines())
    assert header[0] == "run_id" and "apogee_m" in header and len(rows) == 2
    assert summary.read_text().startswith("## ✅ Lynx study: RocketPy Flight")


def test_a_failing_scenario_fails_the_check(tmp_path):
    work = checkout(tmp_path)
    (work / "scenarios/rocketry/python/rocket_flight_lynx.py").write_text(FAILING_SCENARIO)
    ran, summary = run_job(work, tmp_path, LYNX_RUNS="2")
    name, code, out, err = ran[-1]
    assert (name, code) == ("Run the study (stack and runner inside this job)", 1), out + err
    assert out.rstrip().splitlines()[-1].startswith("study failed: 0/2 runs succeeded, 2 failed")
    assert "guidance diverged" in (work / "lynx-results/junit.xml").read_text()
    assert summary.read_text().startswith("## ❌ Lynx study: RocketPy Flight")

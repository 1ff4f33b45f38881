"""README command 1's engine: `lynx run` brings a private stack up, runs a study, prints results, stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


def test_lynx_run_runs_the_tutorial_study_and_leaves_nothing_running(tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "LYNX_RUNNER_OUTPUT_ROOT": str(runs)}
    done = subprocess.run(
        [str(BIN / "lynx"), "run", "scenarios/aerospace/configs/basic_orbit_tutorial.yaml", "--runs", "2",
         "--data-dir", str(tmp_path / "data")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "submitted batch" in out and "(2 jobs)" in out
    assert "Running" in out or "Completed" in out  # progress lines while it runs
    assert "batch Completed: 2/2 jobs succeeded" in out
    table = out[out.index("JOB  "):].splitlines()
    rows = [line for line in table[1:] if line.strip() and not line.startswith(("batch ", "study "))]
    assert out.rstrip().splitlines()[-1].startswith("study passed: 2/2 runs succeeded")  # the gate's verdict
    assert len(rows) == 2
    for row in rows:
        assert "  yes  " in row
        paths = [Path(p.strip()) for p in row.split("  ")[-1].split(",")]
        assert sorted(p.name for p in paths) == ["orbit_position.png", "summary.json", "trajectory.csv"]
        assert all(p.is_file() and runs in p.parents for p in paths)
    # every process it started is gone
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path / "data") not in ps
    assert not [line for line in ps.splitlines() if "lynx_runner.main" in line and str(runs) in line]


def test_lynx_run_reports_a_bad_config_and_stops(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "scenarios/aerospace/configs/basic_orbit_tutorial.yaml").read_text()
                   .replace("sampling_method: latin_hypercube", "sampling_method: astrology"))
    done = subprocess.run(
        [sys.executable, "-m", "lynx_cli.main", "run", str(bad), "--runners", "0", "--data-dir", str(tmp_path / "d")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2  # a bad config, as CI tells it apart from a failed study (docs/ci.md)
    assert "HTTP 400" in done.stderr and "monte_carlo.sampling_method" in done.stderr
    assert "Traceback" not in done.stderr
    assert str(tmp_path / "d") not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_lynx_preview_offline_writes_the_run_configs_the_gateway_would(stack, tmp_path):
    study = "scenarios/aerospace/configs/basic_orbit_tutorial.yaml"
    out = tmp_path / "runs.csv"
    done = subprocess.run([str(BIN / "lynx"), "preview", study, "--runs", "4", "--limit", "3", "-o", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "wrote 3 of 4 run configs" in done.stderr and "(seed 42)" in done.stderr
    online = subprocess.run([str(BIN / "lynx"), "preview", study, "--runs", "4", "--limit", "3", "--format", "csv",
                             "--url", stack.http.base], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert online.returncode == 0, online.stderr
    assert out.read_text() == online.stdout
    rows = out.read_text().splitlines()
    assert rows[0].startswith("run_id,seed,semi_major_axis_m,")
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]


def test_lynx_preview_offline_names_the_bad_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "scenarios/aerospace/configs/basic_orbit_tutorial.yaml").read_text()
                   .replace("sampling_method: latin_hypercube", "sampling_method: astrology"))
    done = subprocess.run([str(BIN / "lynx"), "preview", str(bad)], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "monte_carlo.sampling_method" in done.stderr and "Traceback" not in done.stderr

"""`lynx run` prints the dashboard link of its batch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


def test_lynx_run_prints_the_dashboard_link(tmp_path):
    env = {**os.environ, "LYNX_RUNNER_OUTPUT_ROOT": str(tmp_path / "runs")}
    done = subprocess.run(
        [str(BIN / "lynx"), "run", "scenarios/aerospace/configs/basic_orbit_tutorial.yaml", "--runs", "1",
         "--data-dir", str(tmp_path / "data")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    batch_id = re.search(r"submitted batch (\S+)", done.stdout).group(1)
    assert re.search(rf"dashboard: http://127\.0\.0\.1:\d+/ui/batches/{batch_id}\n", done.stdout), done.stdout

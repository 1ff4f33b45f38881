"""Helpers for the CI gate tests: a live stack with a runner of the tiny threshold scenario, the CLI, studies."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from lynx_cli import stack as lynx_stack

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LYNX = [sys.executable, "-m", "lynx_cli.main"]


@dataclass
class Live:
    url: str
    stack: lynx_stack.Stack


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Live:
    """sampler, scheduler, telemetry, gateway and one runner serving simulation type ci-threshold."""
    root = tmp_path_factory.mktemp("ci-stack")
    runner = lynx_stack.Runner(
        "ci-runner", "CI Runner", HERE / "runner-threshold.yaml", env={"LYNX_RUNNER_OUTPUT_ROOT": str(root / "runs")}
    )
    stack = lynx_stack.Stack(root / "data", runners=[runner], cwd=REPO, ready_timeout=120, stop_grace=10)
    stack.start()
    try:
        yield Live(stack.ports.gateway_url, stack)
    finally:
        stack.stop()


def lynx(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """The `lynx` CLI as a CI job runs it: a subprocess in the repository, output captured."""
    full = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    full.update(env or {})
    return subprocess.run([*LYNX, *args], cwd=REPO, env=full, capture_output=True, text=True, timeout=timeout)


def study(tmp_path: Path, **changes: object) -> Path:
    """tests/ci/threshold.yaml with top-level sections patched (a dict replaces a section's keys)."""
    import yaml

    document = yaml.safe_load((HERE / "threshold.yaml").read_text())
    for section, value in changes.items():
        if isinstance(value, dict):
            document.setdefault(section, {}).update(value)
        else:
            document[section] = value
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(document))
    return path

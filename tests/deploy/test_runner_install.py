"""The runner installs on a host by itself: a fresh venv with only its own dependencies."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a runner host installs: the generated stubs, the shared bootstrap and the runner.
RUNNER_PACKAGES = ["gen/python", "services/common", "services/runner"]
CONTROL_PLANE_ONLY = {"numpy", "scipy", "aiohttp", "aiosqlite", "lynx-sampler", "lynx-scheduler", "lynx-gateway"}


@pytest.fixture(scope="module")
def runner_venv(tmp_path_factory) -> Path:
    env_dir = tmp_path_factory.mktemp("runner-venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # Copies of the three folders, as a runner host would have them (setuptools builds in the
    # source folder, which must not be the checkout); non-editable; grpcio etc. from the index.
    sources = tmp_path_factory.mktemp("runner-sources")
    for package in RUNNER_PACKAGES:
        shutil.copytree(ROOT / package, sources / package, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *[str(sources / p) for p in RUNNER_PACKAGES]],
        check=True, timeout=420,
    )
    return env_dir


def test_runner_installs_alone_without_the_control_plane(runner_venv):
    listing = subprocess.run(
        [str(runner_venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True,
    ).stdout
    installed = {line.split("==")[0].lower() for line in listing.splitlines()}
    assert {"grpcio", "protobuf", "pyyaml", "lynx-runner", "lynx-protos"} <= installed
    assert not (CONTROL_PLANE_ONLY & installed), CONTROL_PLANE_ONLY & installed


def test_runner_starts_and_imports_every_module(runner_venv):
    out = subprocess.run(
        [str(runner_venv / "bin" / "lynx-runner"), "--help"], capture_output=True, text=True, timeout=60,
        cwd=runner_venv,  # not the repository: nothing resolves from the source tree
    )
    assert out.returncode == 0, out.stderr
    assert "--runner-id" in out.stdout and "--config" in out.stdout
    code = (
        "import importlib, pkgutil, lynx_runner\n"
        "for m in pkgutil.iter_modules(lynx_runner.__path__):\n"
        "    importlib.import_module('lynx_runner.' + m.name)\n"
        "import lynx_runner; print(lynx_runner.__file__)"
    )
    out = subprocess.run(
        [str(runner_venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60, cwd=runner_venv
    )
    assert out.returncode == 0, out.stderr
    assert str(runner_venv) in out.stdout  # the installed copy, not the checkout
    assert sys.prefix not in out.stdout

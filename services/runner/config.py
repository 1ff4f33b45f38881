"""Runner configuration: YAML file plus LYNX_RUNNER_* environment overrides."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

import yaml
from lynx_common.errors import ValidationError

ENV_PREFIX = "LYNX_RUNNER_"
KNOWN_ENGINES = ("basilisk",)


@dataclass(frozen=True)
class RunnerConfig:
    """What one runner offers and how it launches scenarios; paths are resolved at load."""

    engines: tuple[str, ...] = ("basilisk",)
    capabilities: tuple[str, ...] = ("basilisk",)
    working_directory: Path = Path(".")
    output_root: Path = Path("/tmp/tetryx-runs")
    python_executable: str = "python3"
    basilisk_entrypoint: Path = Path("scenarios/aerospace/python/scenario_basic_orbit_lynx.py")
    max_concurrent_jobs: int = 1
    heartbeat_interval_secs: float = 2.0

    @property
    def entrypoint_path(self) -> Path:
        """The entrypoint, relative paths taken from working_directory."""
        return self.working_directory / self.basilisk_entrypoint


def _as_list(value: object, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list):
        items = [str(v).strip() for v in value]
    else:
        raise ValidationError(field, f"must be a list of strings, got {value!r}")
    items = [v for v in items if v]
    if not items:
        raise ValidationError(field, "must not be empty")
    return tuple(items)


def _coerce(name: str, value: object) -> object:
    if name in ("engines", "capabilities"):
        return _as_list(value, name)
    if name in ("working_directory", "output_root", "basilisk_entrypoint"):
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(name, f"must be a path, got {value!r}")
        return Path(os.path.expanduser(value))
    if name == "python_executable":
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(name, f"must be an executable name or path, got {value!r}")
        return value.strip()
    if name == "max_concurrent_jobs":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValidationError(name, f"must be a whole number, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValidationError(name, f"must be a whole number, got {value!r}") from None
        if number < 1:
            raise ValidationError(name, f"must be at least 1, got {number}")
        return number
    if name == "heartbeat_interval_secs":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(name, f"must be a number of seconds, got {value!r}") from None
        if not 0.1 <= number <= 60:
            raise ValidationError(name, f"must be between 0.1 and 60 seconds, got {number}")
        return number
    raise ValidationError(name, "is not a runner config field")


def load_config(path: str | Path | None, env: Mapping[str, str] = os.environ) -> RunnerConfig:
    """Read the YAML file (if any), apply LYNX_RUNNER_* overrides, validate, resolve paths."""
    values: dict[str, object] = {}
    if path is not None:
        try:
            document = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ValidationError("--config", f"cannot be read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ValidationError("--config", f"is not valid YAML: {exc}") from None
        if not isinstance(document, dict):
            raise ValidationError("--config", "must be a YAML mapping of runner fields")
        values.update(document)
    names = {f.name for f in fields(RunnerConfig)}
    for name in names:
        if f"{ENV_PREFIX}{name.upper()}" in env:
            values[name] = env[f"{ENV_PREFIX}{name.upper()}"]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValidationError(unknown[0], f"is not a runner config field (known: {', '.join(sorted(names))})")
    config = RunnerConfig(**{k: _coerce(k, v) for k, v in values.items()})
    for engine in config.engines:
        if engine not in KNOWN_ENGINES:
            raise ValidationError("engines", f"unknown engine {engine!r} (known: {', '.join(KNOWN_ENGINES)})")
    working = config.working_directory.resolve()
    if not working.is_dir():
        raise ValidationError("working_directory", f"{working} is not a directory")
    return replace(config, working_directory=working, output_root=config.output_root.absolute())


def resolve_python(executable: str) -> str:
    """Absolute path of python_executable; a bare name prefers the runner's own environment."""
    if os.sep in executable:
        return executable
    own_bin = str(Path(sys.executable).parent)
    found = shutil.which(executable, path=own_bin + os.pathsep + os.environ.get("PATH", ""))
    if found is None:
        raise ValidationError("python_executable", f"{executable!r} was not found on PATH")
    return found

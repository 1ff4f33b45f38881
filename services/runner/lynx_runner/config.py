"""Runner configuration: YAML file plus LYNX_RUNNER_* environment overrides."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

import yaml

from lynx_common.errors import ValidationError

ENV_PREFIX = "LYNX_RUNNER_"
KNOWN_ENGINES = ("basilisk", "command", "python")
DEFAULT_LOG_CAP_BYTES = 10 * 2**20
# The placeholders a command's args may use; nothing else is substituted, and never through a shell.
COMMAND_PLACEHOLDERS = ("run_config", "output_dir", "telemetry_url", "job_id", "batch_id", "attempt",
                        "run_id", "working_directory")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_MEMORY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(?:[eE](\d+))?\s*(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E)?")
_MEMORY_UNITS = {None: 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_PRELOAD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class CommandSpec:
    """The `command` engine's program: an executable and an argument template (no shell)."""

    executable: str
    args: tuple[str, ...] = ()

    def argv(self, values: Mapping[str, str]) -> list[str]:
        """The executable and its args with each {placeholder} replaced from `values`."""
        return [self.executable, *(_PLACEHOLDER.sub(lambda m: values[m.group(1)], a) for a in self.args)]


def parse_memory(text: object, field: str = "memory") -> int:
    """Bytes from Kubernetes notation ("512Mi", "1Gi", "1G", "1e9", 1073741824); 0 or "" = no limit."""
    if isinstance(text, bool):
        raise ValidationError(field, f"must be a memory quantity like 512Mi or 1Gi, got {text!r}")
    if isinstance(text, int | float):
        text = repr(text)
    if not isinstance(text, str):
        raise ValidationError(field, f"must be a memory quantity like 512Mi or 1Gi, got {text!r}")
    if not text.strip():
        return 0
    match = _MEMORY.fullmatch(text.strip())
    if not match:
        raise ValidationError(field, f"must be a memory quantity like 512Mi or 1Gi, got {text!r}")
    value = float(match.group(1)) * 10 ** int(match.group(2) or 0) * _MEMORY_UNITS[match.group(3)]
    if not math.isfinite(value) or value > 2**62:
        raise ValidationError(field, f"is too large: {text!r}")
    return int(value)


# `warm_up: auto` (the default): the built-in warm-up for whatever the fork server preloaded.
AUTO_WARM_UP = Path(__file__).resolve().parent / "warm_up_auto.py"


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
    # Hold one lease more than max_concurrent_jobs, started the moment a running job's process exits
    # (while that job's outputs are uploaded and reported), while recent jobs ran shorter than this; 0 = never.
    lease_ahead_below_seconds: float = 30.0
    heartbeat_interval_secs: float = 2.0
    warm_start: bool = True
    preload: tuple[str, ...] = ("auto",)
    warm_up: Path | None = AUTO_WARM_UP
    command: CommandSpec | None = None
    log_cap_bytes: int = DEFAULT_LOG_CAP_BYTES
    job_memory_limit: int = 0
    upload_artifacts: bool = True  # upload every output file to the artifact store (off: benchmarks)
    artifact_upload_limit: int = 1 << 30  # bytes uploaded per job at most; the rest is noted

    @property
    def entrypoint_path(self) -> Path:
        """The entrypoint, relative paths taken from working_directory."""
        return self.working_directory / self.basilisk_entrypoint

    def command_executable(self) -> str:
        """The command engine's executable: a path (relative to working_directory) or a name on PATH."""
        assert self.command is not None
        executable = self.command.executable
        if os.sep in executable:
            return str(self.working_directory / os.path.expanduser(executable))
        found = shutil.which(executable)
        if found is None:
            raise ValidationError("command.executable", f"{executable!r} was not found on PATH")
        return found


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


def _as_bool(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValidationError(field, f"must be true or false, got {value!r}")


def _as_preload(value: object) -> tuple[str, ...]:
    if value is None or value == "" or value == [] or (isinstance(value, str) and value.strip().lower() == "none"):
        return ()
    names = _as_list(value, "preload")
    for name in names:
        if not _PRELOAD.fullmatch(name):
            raise ValidationError("preload", f"{name!r} is not a module name like Basilisk.simulation.spacecraft")
    return names


def _as_command(value: object) -> CommandSpec | None:
    """The command engine's {executable, args}; from YAML, or JSON text in LYNX_RUNNER_COMMAND."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError("command", 'must be a mapping like {"executable": "...", "args": [...]}') from None
    if not isinstance(value, dict):
        raise ValidationError("command", f"must be a mapping with executable and args, got {value!r}")
    unknown = sorted(set(value) - {"executable", "args"})
    if unknown:
        raise ValidationError(f"command.{unknown[0]}", "is not a command field (known: args, executable)")
    executable = value.get("executable")
    if not isinstance(executable, str) or not executable.strip():
        raise ValidationError("command.executable", f"must be an executable name or path, got {executable!r}")
    args = value.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str | int | float) and not isinstance(a, bool)
                                             for a in args):
        raise ValidationError("command.args", f"must be a list of strings, got {args!r}")
    args = [str(a) for a in args]
    for i, arg in enumerate(args):
        if "{" in _PLACEHOLDER.sub("", arg) or "}" in _PLACEHOLDER.sub("", arg):
            raise ValidationError(f"command.args[{i}]", f"has an unbalanced brace: {arg!r}")
        for name in _PLACEHOLDER.findall(arg):
            if name not in COMMAND_PLACEHOLDERS:
                raise ValidationError(
                    f"command.args[{i}]",
                    f"unknown placeholder {{{name}}} (known: {', '.join(COMMAND_PLACEHOLDERS)})",
                )
    return CommandSpec(executable.strip(), tuple(args))


def _coerce(name: str, value: object) -> object:
    if name in ("engines", "capabilities"):
        return _as_list(value, name)
    if name in ("warm_start", "upload_artifacts"):
        return _as_bool(value, name)
    if name == "artifact_upload_limit":
        return parse_memory(value, name)
    if name == "preload":
        return _as_preload(value)
    if name == "warm_up":
        if value is None or value in ("", "none"):
            return None
        if value == "auto":
            return AUTO_WARM_UP
        if not isinstance(value, str):
            raise ValidationError(name, f"must be a path to a Python file, got {value!r}")
        return Path(os.path.expanduser(value))
    if name == "command":
        return _as_command(value)
    if name == "job_memory_limit":
        return parse_memory(value if value is not None else "", name)
    if name == "log_cap_bytes":
        number = parse_memory(value, name)
        if number < 1024:
            raise ValidationError(name, f"must be at least 1Ki, got {value!r}")
        return number
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
    if name == "lease_ahead_below_seconds":
        return _seconds(name, value, 0, 86400, "0 (never)")
    if name == "heartbeat_interval_secs":
        return _seconds(name, value, 0.1, 60)
    raise ValidationError(name, "is not a runner config field")


def _seconds(name: str, value: object, low: float, high: float, low_text: str = "") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(name, f"must be a number of seconds, got {value!r}") from None
    if not low <= number <= high:
        raise ValidationError(name, f"must be between {low_text or f'{low:g}'} and {high:g} seconds, got {number}")
    return number


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
    if "command" in config.engines and config.command is None:
        raise ValidationError("command", "is required when engines include command ({executable, args})")
    working = config.working_directory.resolve()
    if not working.is_dir():
        raise ValidationError("working_directory", f"{working} is not a directory")
    if config.warm_up is not None and not (working / config.warm_up).is_file():
        raise ValidationError("warm_up", f"{working / config.warm_up} is not a file")
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

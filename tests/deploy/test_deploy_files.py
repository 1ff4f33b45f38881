"""compose.yaml, Dockerfile and .dockerignore, kept correct without a Docker engine.

No Docker engine runs in CI, so these tests read the files and check them against
the code they start: every command is a declared console script (or an importable
`python -m` module), every flag is accepted by that program's real argparse parser,
ports and service names agree between commands, health checks and addresses, and
the Dockerfile copies what exists and installs what the containers run. Two health
checks are also executed, exactly as compose would, against real servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import importlib
import io
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

from lynx_runner.config import RunnerConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
# Every installable package of the repository: its folder -> its pyproject.toml.
PACKAGE_DIRS = sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob("**/pyproject.toml")
                      if p.parent != ROOT and not {".venv", "node_modules"} & set(p.relative_to(ROOT).parts))
PYPROJECTS = {d: tomllib.loads((ROOT / d / "pyproject.toml").read_text()) for d in PACKAGE_DIRS}
SCRIPTS: dict[str, str] = {k: v for p in PYPROJECTS.values() for k, v in p["project"].get("scripts", {}).items()}
GRPC_SCRIPTS = {"lynx-sampler", "lynx-scheduler", "lynx-telemetry"}
HEALTHCHECK_MODULE = "lynx_common.healthcheck"
PYTHON_NAMES = {"python", "python3", "python3.11"}

DOCKERFILE_KEYWORDS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}


# ---------------------------------------------------------------- helpers


def argv_of(command: object) -> list[str]:
    """A compose `command` / healthcheck argv as a list of strings."""
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list), f"command must be a list or string, got {command!r}"
    return [str(part) for part in command]


def healthcheck_argv(service: str) -> list[str]:
    """The argv compose runs for a service's health check (CMD or CMD-SHELL form)."""
    test = SERVICES[service].get("healthcheck", {}).get("test")
    assert test, f"service {service!r} has no healthcheck test"
    if isinstance(test, str):
        return shlex.split(test)
    head, *rest = [str(t) for t in test]
    if head == "CMD-SHELL":
        return shlex.split(" ".join(rest))
    assert head == "CMD", f"{service}: healthcheck test must start with CMD or CMD-SHELL, got {head!r}"
    return rest


class _Parsed(Exception):
    def __init__(self, namespace: argparse.Namespace) -> None:
        self.namespace = namespace


def parse_with_real_parser(
    module_name: str, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> argparse.Namespace:
    """Run `module.main(args)` up to its argparse call and return the parsed namespace.

    The program's own parser does the parsing (unknown flags and bad values fail as
    they would in the container); nothing after parse_args runs, so no server starts.
    """
    module = importlib.import_module(module_name)
    real_parse_args = argparse.ArgumentParser.parse_args

    def stop_after_parsing(self, argv=None, namespace=None):
        raise _Parsed(real_parse_args(self, argv, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop_after_parsing)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            module.main(args)
    except _Parsed as parsed:
        return parsed.namespace
    except SystemExit as exc:
        pytest.fail(f"{module_name} rejects {args}: {stderr.getvalue().strip()} (exit {exc.code})")
    finally:
        monkeypatch.undo()
    pytest.fail(f"{module_name}.main() returned without parsing its arguments")


def entry_module(argv: list[str]) -> tuple[str, list[str]]:
    """(module holding main(), its arguments) for a console script or `python -m` argv."""
    if argv[0] in SCRIPTS:
        return SCRIPTS[argv[0]].split(":")[0], argv[1:]
    assert argv[0] in PYTHON_NAMES and argv[1] == "-m", f"not a console script or python -m: {argv}"
    return argv[2], argv[3:]


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    assert host and port.isdigit(), f"{addr!r} is not host:port"
    return host, int(port)


@dataclass
class Dockerfile:
    instructions: list[tuple[str, str]]  # (KEYWORD, arguments), continuation lines joined

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        instructions, pending = [], ""
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if pending and stripped.startswith("#"):
                continue  # comment lines inside a continued instruction are dropped by Docker
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            full = (pending + stripped).strip()
            pending = ""
            keyword, _, args = full.partition(" ")
            instructions.append((keyword, args.strip()))
        assert not pending, "Dockerfile ends inside a continued line"
        return cls(instructions)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw.upper() == keyword]

    def copies(self) -> list[tuple[list[str], str, str]]:
        """(sources, destination, WORKDIR in effect) of every COPY/ADD from the build context."""
        result, workdir = [], "/"
        for kw, args in self.instructions:
            if kw.upper() == "FROM":
                workdir = "/"
            elif kw.upper() == "WORKDIR":
                workdir = str(PurePosixPath(workdir) / args)
            elif kw.upper() in ("COPY", "ADD"):
                parts = [p for p in shlex.split(args) if not p.startswith("--")]
                if any(p.startswith("--from") for p in shlex.split(args)):
                    continue
                *sources, dest = parts
                result.append((sources, dest, workdir))
        return result

    def final_workdir(self) -> str:
        workdir = "/"
        for args in self.all("WORKDIR"):
            workdir = str(PurePosixPath(workdir) / args)
        return workdir

    def image_path_to_repo(self, container_path: str) -> Path | None:
        """The repository file a container path comes from, through the COPY instructions."""
        target = PurePosixPath(container_path)
        for sources, dest, workdir in reversed(self.copies()):
            dest_abs = PurePosixPath(workdir) / dest
            for source in sources:
                copied_as = dest_abs if not dest.endswith("/") else dest_abs / PurePosixPath(source).name
                if target == copied_as or copied_as in target.parents:
                    return ROOT / source / target.relative_to(copied_as)
        return None


DOCKERFILE = Dockerfile.read(ROOT / "Dockerfile")


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def is_dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` (relative to the context) out of the build context."""
    rel = PurePosixPath(path)
    candidates = [rel, *[p for p in rel.parents if str(p) != "."]]
    ignored = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        for candidate in candidates:
            text = str(candidate)
            hit = fnmatch.fnmatchcase(text, pattern)
            if pattern.startswith("**/"):
                tail = pattern[3:]
                hit = hit or any(
                    fnmatch.fnmatchcase("/".join(candidate.parts[i:]), tail)
                    for i in range(len(candidate.parts))
                )
            if hit:
                ignored = not negate
                break
    return ignored


def grpc_port(service: str, monkeypatch: pytest.MonkeyPatch) -> int:
    module, args = entry_module(argv_of(SERVICES[service]["command"]))
    return parse_with_real_parser(module, args, monkeypatch).port


def gateway_args(monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    module, args = entry_module(argv_of(SERVICES["gateway"]["command"]))
    return parse_with_real_parser(module, args, monkeypatch)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- compose.yaml


def test_compose_defines_every_service():
    assert {"sampler", "scheduler", "telemetry", "gateway", "runner"} <= set(SERVICES)


def test_every_service_runs_the_one_image_built_from_this_repo():
    images = {name: svc.get("image") for name, svc in SERVICES.items()}
    builds = {name: svc.get("build") for name, svc in SERVICES.items()}
    assert len(set(images.values())) == 1 and None not in images.values(), images
    assert all(b == builds["sampler"] for b in builds.values()), builds
    build = builds["sampler"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context).resolve() == ROOT
    assert (ROOT / context / dockerfile).is_file()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_command_is_a_declared_console_script_or_importable_module(service):
    argv = argv_of(SERVICES[service].get("command"))
    if argv[0] in SCRIPTS:
        return
    assert argv[0] in PYTHON_NAMES and argv[1:2] == ["-m"], (
        f"{service}: {argv[0]!r} is neither a console script of pyproject.toml "
        f"({', '.join(sorted(SCRIPTS))}) nor `python -m`"
    )
    importlib.import_module(argv[2])


def test_every_console_script_target_exists():
    for script, target in SCRIPTS.items():
        module_name, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module_name), func)), script


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_flag_is_accepted_by_the_service_parser(service, monkeypatch):
    module, args = entry_module(argv_of(SERVICES[service]["command"]))
    namespace = parse_with_real_parser(module, args, monkeypatch)
    if hasattr(namespace, "host"):
        # 127.0.0.1 inside a container is unreachable from every other container
        assert namespace.host == "0.0.0.0", f"{service} binds {namespace.host}"


@pytest.mark.parametrize(
    "service", sorted(s for s in SERVICES if argv_of(SERVICES[s]["command"])[0] in GRPC_SCRIPTS)
)
def test_grpc_services_have_a_health_probe_on_their_own_port(service, monkeypatch):
    argv = healthcheck_argv(service)
    assert argv[0] in PYTHON_NAMES and argv[1:3] == ["-m", HEALTHCHECK_MODULE], argv
    namespace = parse_with_real_parser(HEALTHCHECK_MODULE, argv[3:], monkeypatch)
    host, port = split_addr(namespace.addr)
    assert host in ("127.0.0.1", "localhost")
    assert port == grpc_port(service, monkeypatch)


def test_all_three_grpc_services_are_probed():
    grpc_services = {s for s in SERVICES if argv_of(SERVICES[s]["command"])[0] in GRPC_SCRIPTS}
    assert grpc_services == {"sampler", "scheduler", "telemetry"}


def test_gateway_health_probe_requests_healthz_on_the_gateway_port(monkeypatch):
    argv = healthcheck_argv("gateway")
    assert argv[0] in PYTHON_NAMES and argv[1] == "-c", argv
    compile(argv[2], "<gateway healthcheck>", "exec")
    urls = re.findall(r"https?://[^'\"\s]+", argv[2])
    assert len(urls) == 1, argv[2]
    url = urlsplit(urls[0])
    gateway = gateway_args(monkeypatch)
    assert url.hostname in ("127.0.0.1", "localhost")
    assert url.port == gateway.port
    assert url.path == "/healthz"


def test_gateway_is_published_on_8080_to_its_listening_port(monkeypatch):
    gateway = gateway_args(monkeypatch)
    published = []
    for mapping in SERVICES["gateway"].get("ports", []):
        if isinstance(mapping, dict):
            published.append((int(mapping["published"]), int(mapping["target"])))
        else:
            host_port, container_port = str(mapping).rsplit(":", 2)[-2:]
            published.append((int(host_port), int(container_port)))
    assert (8080, gateway.port) in published


def _addresses() -> list[tuple[str, str, str]]:
    """(service, where, host:port) of every address a service is given."""
    found = []
    for name, svc in SERVICES.items():
        argv = argv_of(svc["command"])
        for flag, value in zip(argv, argv[1:], strict=False):
            if flag.startswith("--") and flag.endswith("-addr"):
                found.append((name, flag, value))
        env = svc.get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        for key, value in env.items():
            if key.endswith("_ADDR"):
                found.append((name, key, str(value)))
    return found


def test_services_are_given_addresses():
    where = {(svc, key) for svc, key, _ in _addresses()}
    assert {
        ("scheduler", "--sampler-addr"),
        ("gateway", "--scheduler-addr"),
        ("gateway", "--telemetry-addr"),
        ("runner", "LYNX_SCHEDULER_ADDR"),
        ("runner", "LYNX_TELEMETRY_ADDR"),
    } <= where


@pytest.mark.parametrize(("service", "where", "addr"), _addresses())
def test_every_address_names_a_compose_service_and_its_port(service, where, addr, monkeypatch):
    host, port = split_addr(addr)
    assert host in SERVICES, f"{service} {where}={addr}: no compose service {host!r}"
    assert port == grpc_port(host, monkeypatch), f"{service} {where}={addr}"
    # --sampler-addr must name the sampler, LYNX_TELEMETRY_ADDR the telemetry service, ...
    kind = next(k for k in ("sampler", "scheduler", "telemetry") if k in where.lower())
    assert host == kind, f"{service} {where} points at {host}"


def test_depends_on_targets_exist_and_healthy_targets_have_healthchecks():
    for name, svc in SERVICES.items():
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for target, spec in deps.items():
            assert target in SERVICES, f"{name} depends on unknown service {target!r}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health check"


def test_runner_and_gateway_wait_for_healthy_backends():
    for name in ("runner", "gateway"):
        deps = SERVICES[name]["depends_on"]
        for target in ("scheduler", "telemetry"):
            assert deps[target]["condition"] == "service_healthy", name


def _mounts(service: str) -> dict[str, str]:
    """container path -> source of every volume of a service."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume["source"]
        else:
            source, target = str(volume).split(":")[:2]
            mounts[target] = source
    return mounts


def test_named_volumes_are_declared():
    declared = set(COMPOSE.get("volumes") or {})
    for name in SERVICES:
        for source in _mounts(name).values():
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source!r}"


@pytest.mark.parametrize("service", ["scheduler", "telemetry"])
def test_data_dir_is_on_a_named_volume(service, monkeypatch):
    module, args = entry_module(argv_of(SERVICES[service]["command"]))
    data_dir = str(parse_with_real_parser(module, args, monkeypatch).data_dir)
    mounts = _mounts(service)
    assert data_dir in mounts, f"{service} keeps its data in {data_dir}, which is not a volume"
    assert mounts[data_dir] in (COMPOSE.get("volumes") or {})


def _runner_env() -> dict[str, str]:
    env = SERVICES["runner"].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_runner_overrides_name_real_config_fields():
    fields = {f.upper() for f in RunnerConfig.__dataclass_fields__}
    for key in _runner_env():
        if key.startswith("LYNX_RUNNER_"):
            # load_config ignores unknown LYNX_RUNNER_* names, so a typo would go unnoticed
            assert key.removeprefix("LYNX_RUNNER_") in fields, key


def test_runner_config_loads_with_compose_env_and_writes_outputs_to_a_volume(monkeypatch):
    namespace = parse_with_real_parser(
        "lynx_runner.main", argv_of(SERVICES["runner"]["command"])[1:], monkeypatch
    )
    assert namespace.config, "the runner needs --config"
    workdir = DOCKERFILE.final_workdir()
    config_in_image = str(PurePosixPath(workdir) / namespace.config)
    repo_config = DOCKERFILE.image_path_to_repo(config_in_image)
    assert repo_config is not None and repo_config.is_file(), f"{config_in_image} is not in the image"
    assert repo_config.resolve() == (ROOT / "configs/lynx-runner-basilisk.yaml").resolve()

    config = load_config(repo_config, env=_runner_env())
    output_root = str(config.output_root)
    assert output_root in _mounts("runner"), f"outputs go to {output_root}, which is not a volume"
    assert _mounts("runner")[output_root] in (COMPOSE.get("volumes") or {})

    # working_directory is relative to the container's WORKDIR: the entrypoint must be there
    raw = yaml.safe_load(repo_config.read_text())
    entrypoint = PurePosixPath(workdir) / raw.get("working_directory", ".") / raw["basilisk_entrypoint"]
    repo_entrypoint = DOCKERFILE.image_path_to_repo(str(entrypoint))
    assert repo_entrypoint is not None and repo_entrypoint.is_file(), f"{entrypoint} is not in the image"


# ---------------------------------------------------------------- health probes, run as compose would


async def test_grpc_health_probe_exits_0_for_a_serving_server_and_1_for_a_dead_port(tmp_path):
    from lynx.telemetry.v1 import telemetry_service_pb2 as pb
    from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
    from lynx_common.server import GrpcServer
    from lynx_telemetry.server import TelemetryServicer
    from lynx_telemetry.store import TelemetryStore

    store = await TelemetryStore.open(tmp_path / "telemetry.db")
    server = GrpcServer(
        lambda s: pb_grpc.add_TelemetryServiceServicer_to_server(TelemetryServicer(store), s),
        [pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name],
        "127.0.0.1",
        0,
    )
    await server.start()
    try:
        argv = healthcheck_argv("telemetry")
        assert "--addr" in argv
        i = argv.index("--addr")
        live = [*argv[: i + 1], server.address, *argv[i + 2 :]]
        dead = [*argv[: i + 1], f"127.0.0.1:{free_port()}", *argv[i + 2 :]]
        ok = await _run([sys.executable, *live[1:]])
        assert ok.returncode == 0, ok.stderr
        assert "SERVING" in ok.stdout
        down = await _run([sys.executable, *dead[1:]])
        assert down.returncode != 0
    finally:
        await server.stop(0)
        await store.close()


async def test_gateway_health_probe_exits_0_against_a_running_gateway():
    from aiohttp import web

    from lynx_gateway.server import build_app

    runner = web.AppRunner(build_app("127.0.0.1:1", "127.0.0.1:1"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        argv = healthcheck_argv("gateway")
        code = argv[2].replace(":8080/", f":{port}/")
        assert code != argv[2], "the probe does not name port 8080"
        ok = await _run([sys.executable, "-c", code])
        assert ok.returncode == 0, ok.stderr
        dead = await _run([sys.executable, "-c", argv[2].replace(":8080/", f":{free_port()}/")])
        assert dead.returncode != 0
    finally:
        await runner.cleanup()


async def _run(argv: list[str]) -> subprocess.CompletedProcess:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    return subprocess.CompletedProcess(argv, proc.returncode, out.decode(), err.decode())


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_instructions_are_valid_and_from_comes_first():
    keywords = [kw for kw, _ in DOCKERFILE.instructions]
    unknown = [kw for kw in keywords if kw.upper() not in DOCKERFILE_KEYWORDS]
    assert not unknown, f"not Dockerfile instructions: {unknown}"
    first_real = next(kw for kw in keywords if kw.upper() != "ARG")
    assert first_real.upper() == "FROM"


def test_base_image_python_satisfies_every_pyproject():
    base = DOCKERFILE.all("FROM")[-1].split()[0]
    match = re.fullmatch(r"python:(\d+)\.(\d+)(?:[.-].*)?", base)
    assert match, f"base image {base} is not an official python image"
    version = (int(match[1]), int(match[2]))
    for project in PYPROJECTS.values():
        minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)", project["project"]["requires-python"])
        assert version >= (int(minimum[1]), int(minimum[2]))


def test_every_copy_source_exists_and_is_in_the_build_context():
    copies = DOCKERFILE.copies()
    assert copies
    for sources, _, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not is_dockerignored(source), f"COPY {source}: excluded by .dockerignore"


def test_dockerfile_copies_what_pip_needs_to_build_lynx():
    copied = {PurePosixPath(s) for sources, _, _ in DOCKERFILE.copies() for s in sources}
    for path in PACKAGE_DIRS:
        path = PurePosixPath(path)
        assert path in copied or any(c in path.parents for c in copied), f"{path} is not copied"


def test_dockerfile_installs_every_package_with_basilisk_non_editable():
    installs = []
    for run in DOCKERFILE.all("RUN"):
        for command in re.split(r"&&|;", run):
            tokens = shlex.split(command)
            if "pip" in tokens and "install" in tokens:
                installs.append(tokens[tokens.index("install") + 1 :])
    assert installs, "no pip install in the Dockerfile"
    args = [a for tokens in installs for a in tokens]
    installed = {PurePosixPath(a.split("[")[0]) for a in args if not a.startswith("-")}
    assert {PurePosixPath(d) for d in PACKAGE_DIRS} <= installed, installed
    assert "./cli[basilisk]" in args
    assert "-e" not in args and "--editable" not in args


def test_image_runs_as_a_non_root_user():
    users = DOCKERFILE.all("USER")
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_default_command_is_a_console_script():
    cmd = DOCKERFILE.all("CMD")
    assert cmd, "no CMD"
    argv = yaml.safe_load(cmd[-1]) if cmd[-1].startswith("[") else shlex.split(cmd[-1])
    assert argv[0] in SCRIPTS


def test_dockerignore_keeps_local_environments_out_of_the_image():
    for path in (".venv", ".venv/bin/python", "node_modules", "node_modules/.bin/buf", ".git"):
        assert is_dockerignored(path), path
    for path in ("pyproject.toml", "README.md", "services/telemetry/lynx_telemetry/server.py", "scenarios", "configs"):
        assert not is_dockerignored(path), path

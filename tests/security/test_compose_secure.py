"""compose.secure.yaml: every service beyond loopback serves TLS and checks tokens (no --insecure), its flags
parse, and the certificates its `certs` step writes are valid for the compose service names."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lynx_common import security
from lynx_common.server import GrpcServer

ROOT = Path(__file__).resolve().parents[2]
SERVICES = yaml.safe_load((ROOT / "compose.secure.yaml").read_text())["services"]
GRPC = ("sampler", "scheduler", "telemetry")


@pytest.mark.parametrize("name", [*GRPC, "gateway"])
def test_every_exposed_service_has_tls_and_auth_and_is_not_insecure(name):
    argv = [str(a) for a in SERVICES[name]["command"]]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert {"--tls-cert", "--tls-key", "--auth"} <= set(argv) and "--insecure" not in argv
    if name in GRPC:
        parser = argparse.ArgumentParser()
        security.add_server_args(parser)
        args, _ = parser.parse_known_args(argv[1:])
        security.check_exposure(name, "0.0.0.0", security.server_security(args))  # would SystemExit if not


def test_clients_of_the_secure_stack_verify_with_the_ca():
    for name in (*GRPC, "gateway", "runner"):
        assert SERVICES[name]["environment"]["LYNX_TLS_CA"] == "/secrets/tls/ca.pem"
    assert SERVICES["runner"]["environment"]["LYNX_TOKEN_FILE"] == "/secrets/admin.token"


async def test_the_certs_step_writes_a_certificate_valid_for_the_service_names(tmp_path):
    argv = [a.replace("/secrets/tls", str(tmp_path)) for a in SERVICES["certs"]["command"]]
    argv = [a.replace("${LYNX_PUBLIC_HOST:-localhost}", "lynx.example") for a in argv]
    assert argv[:3] == ["python", "-m", "lynx_common.tls"]
    subprocess.run([sys.executable, *argv[1:]], check=True, capture_output=True, timeout=60)
    secure = security.ServerSecurity(tmp_path / "server.pem", tmp_path / "server.key")
    server = GrpcServer(lambda s: None, [], "127.0.0.1", 0, secure)
    await server.start()
    try:
        for name in ("scheduler", "telemetry", "lynx.example", "localhost"):
            assert await _check_as(server.address, tmp_path / "ca.pem", name) == grpc.StatusCode.OK, name
        assert await _check_as(server.address, tmp_path / "ca.pem", "elsewhere.example") == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)


async def _check_as(address: str, ca: Path, name: str) -> grpc.StatusCode:
    """A health check over TLS, verifying the server as `name`."""
    credentials = grpc.ssl_channel_credentials(ca.read_bytes())
    options = [("grpc.ssl_target_name_override", name)]
    async with grpc.aio.secure_channel(address, credentials, options=options) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK

"""`lynx up --tls --auth --host`: the certificates, admin token, flags and client settings of a secured stack."""

from __future__ import annotations

import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lynx_common import security, tls

ADMIN_TOKEN_FILE = "admin.token"
TLS_DIR = "tls"


@dataclass
class StackSecurity:
    """What a Stack turns on: TLS (certificates generated into DATA_DIR/tls), token auth (an admin
    token in DATA_DIR/admin.token), mutual TLS required by the scheduler and ingest, the address the
    scheduler, telemetry-ingest and gateway bind (`host`; the sampler stays on loopback), and
    `insecure` to allow a non-loopback host without TLS and auth."""

    tls: bool = False
    auth: bool = False
    host: str = "127.0.0.1"
    require_client_cert: bool = False
    insecure: bool = False
    allowed_hosts: list[str] = field(default_factory=list)
    files: tls.TlsFiles | None = field(default=None, init=False)
    client: tls.TlsFiles | None = field(default=None, init=False)
    admin_token: str | None = field(default=None, init=False)
    admin_token_file: Path | None = field(default=None, init=False)

    def prepare(self, data_dir: Path) -> None:
        """Write what is missing: CA and server certificate, client certificate, admin token."""
        if self.require_client_cert and not self.tls:
            raise ValueError("mutual TLS (require_client_cert) needs tls")
        marker = Path(".") if self.tls else None  # the exposure rule only asks whether TLS is on
        security.check_exposure("lynx up", self.host,
                                security.ServerSecurity(marker, marker, auth=self.auth, insecure=self.insecure))
        if self.tls:
            self.files = tls.ensure_server_files(data_dir / TLS_DIR, [self.host, *self.allowed_hosts])
            if self.require_client_cert:
                self.client = tls.issue(data_dir / TLS_DIR, "lynx-local-client", client=True)
        if self.auth:
            self.admin_token_file = data_dir / ADMIN_TOKEN_FILE
            if not self.admin_token_file.is_file():
                security.write_secret(self.admin_token_file, security.new_secret())
            self.admin_token = self.admin_token_file.read_text().strip()

    @property
    def connect_host(self) -> str:
        """Where local clients reach the services bound to `host`."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    def env(self) -> dict[str, str]:
        """LYNX_TLS_CA / LYNX_TLS_CERT / LYNX_TLS_KEY / LYNX_TOKEN for the processes of the stack."""
        env = {}
        if self.files is not None:
            env[security.CA_ENV] = str(self.files.ca)
        if self.client is not None:
            env[security.CERT_ENV], env[security.KEY_ENV] = str(self.client.cert), str(self.client.key)
        if self.admin_token:
            env[security.TOKEN_ENV] = self.admin_token
        return env

    def service_args(self, name: str, scheduler_addr: str) -> list[str]:
        """The security flags of one service (sampler, telemetry, scheduler, gateway)."""
        args = [] if name == "sampler" else ["--host", self.host]
        if self.files is not None:
            args += ["--tls-cert", str(self.files.cert), "--tls-key", str(self.files.key)]
            if self.require_client_cert and name in ("scheduler", "telemetry"):
                args += ["--tls-client-ca", str(self.files.ca), "--require-client-cert"]
        if self.auth:
            args.append("--auth")
            if name in ("sampler", "telemetry"):
                args += ["--auth-addr", scheduler_addr]
            if name == "scheduler":
                args += ["--admin-token-file", str(self.admin_token_file)]
        if self.insecure:
            args.append("--insecure")
        if name == "gateway":
            for host in self.allowed_hosts:
                args += ["--allowed-host", host]
        return args

    def ssl_context(self) -> ssl.SSLContext | None:
        """For the CLI's own HTTPS requests to the gateway."""
        return ssl.create_default_context(cafile=str(self.files.ca)) if self.files is not None else None

    def grpc_credentials(self):
        import grpc

        if self.files is None:
            return None
        client = self.client
        return grpc.ssl_channel_credentials(self.files.ca.read_bytes(), client.key.read_bytes() if client else None,
                                            client.cert.read_bytes() if client else None)

    def metadata(self) -> tuple:
        return (("authorization", f"Bearer {self.admin_token}"),) if self.admin_token else ()

    def request(self, url: str) -> urllib.request.Request:
        headers = {"authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}
        return urllib.request.Request(url, headers=headers)

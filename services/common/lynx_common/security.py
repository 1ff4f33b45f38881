"""TLS and token authentication for every Lynx gRPC server and client: roles per RPC, the server
interceptor that checks bearer tokens, and the client channel that sends them (LYNX_TOKEN, LYNX_TLS_*)."""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import ipaddress
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from lynx_common.clientauth import (  # noqa: F401 - the client side, re-exported: one module to import
    CA_ENV,
    CERT_ENV,
    KEY_ENV,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    _read,
    channel_credentials,
    client_channel,
    env_token,
)

log = logging.getLogger(__name__)


READ, SUBMIT, ADMIN, RUNNER = "read", "submit", "admin", "runner"
ROLES = (READ, SUBMIT, ADMIN, RUNNER)
_READERS, _SUBMITTERS, _RUNNERS, _ADMINS = (
    frozenset({READ, SUBMIT, ADMIN}), frozenset({SUBMIT, ADMIN}), frozenset({RUNNER, ADMIN}), frozenset({ADMIN}))
OPEN = frozenset(ROLES)  # any valid token

_SCHED, _TEL = "/lynx.scheduler.v1.SchedulerService/", "/lynx.telemetry.v1.TelemetryService/"
_AUTH = "/lynx.auth.v1.AuthService/"
_ART = "/lynx.artifacts.v1.ArtifactService/"
# Roles allowed per RPC; an RPC of a Lynx service not listed needs admin.
RULES: dict[str, frozenset[str]] = {
    **{_SCHED + m: _SUBMITTERS for m in ("SubmitBatch", "Preview", "ExtendBatch", "CancelBatch", "RerunFailed")},
    **{_SCHED + m: _READERS for m in ("GetBatch", "ListBatches", "GetBatchResults", "ListJobs", "GetJob",
                                       "ListRunners", "GetRunner", "StreamRuns")},
    _SCHED + "Connect": _RUNNERS,
    _ART + "Upload": _RUNNERS,
    **{_ART + m: _READERS for m in ("Download", "Stat")},
    _TEL + "Publish": _RUNNERS,
    **{_TEL + m: _READERS for m in ("Query", "Subscribe", "Export")},
}
# Open without a token: health checks, reflection, and Authenticate (it checks the token it is given).
UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.", _AUTH + "Authenticate")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's id, role and (for a runner token) runner id."""

    token_id: str
    role: str
    runner_id: str = ""


current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("lynx_principal", default=None)


def token_hash(secret: str) -> str:
    """The sha256 hex digest under which a token is stored (the secret itself never is)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A fresh bearer token: 256 random bits."""
    return "lynx_" + secrets.token_urlsafe(32)


def write_secret(path: Path, secret: str) -> None:
    """Write a token to `path`, readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")


def bearer(metadata) -> str:
    """The token of an `authorization: Bearer <token>` metadata entry (or header value), else ""."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            value = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


def required_roles(method: str) -> frozenset[str] | None:
    """The roles that may call `method` (a full gRPC method name); None: no token needed."""
    if method.startswith(UNAUTHENTICATED_PREFIXES):
        return None
    return RULES.get(method, _ADMINS)


Verify = Callable[[str], Awaitable[Principal | None]]


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks the bearer token of every call against `verify` and the RULES; puts the caller in
    `current_principal` for the servicer. Failures: UNAUTHENTICATED (no or bad token) and
    PERMISSION_DENIED (the token's role may not call this RPC)."""

    def __init__(self, verify: Verify) -> None:
        self.verify = verify

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        allowed = required_roles(details.method)
        if handler is None or allowed is None:
            return handler
        secret = bearer(details.invocation_metadata)
        if not secret:
            return _denied(handler, grpc.StatusCode.UNAUTHENTICATED,
                           "this server requires a token: send `authorization: Bearer <token>` (set LYNX_TOKEN)")
        try:
            principal = await self.verify(secret)
        except grpc.aio.AioRpcError as exc:  # the scheduler, which knows the tokens, is away
            log.warning("cannot check a token for %s: %s", details.method, exc.code().name)
            return _denied(handler, grpc.StatusCode.UNAVAILABLE, "cannot check the token now (the scheduler "
                                                                 "is unreachable); try again")
        if principal is None:
            log.warning("refused %s: unknown or revoked token", details.method)
            return _denied(handler, grpc.StatusCode.UNAUTHENTICATED, "the token is unknown or revoked")
        if principal.role not in allowed:
            name = details.method.rsplit("/", 1)[-1]
            log.warning("refused %s: token %s has role %s", details.method, principal.token_id, principal.role)
            return _denied(handler, grpc.StatusCode.PERMISSION_DENIED,
                           f"a {principal.role} token may not call {name} (needs {' or '.join(sorted(allowed))})")
        return _as(handler, principal)


def _denied(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape that only aborts with `code`."""

    async def abort(_request, context):
        await context.abort(code, message)

    async def abort_stream(_request, context):
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator

    kind, _ = _kind(handler)
    make = {"unary_unary": grpc.unary_unary_rpc_method_handler, "unary_stream": grpc.unary_stream_rpc_method_handler,
            "stream_unary": grpc.stream_unary_rpc_method_handler,
            "stream_stream": grpc.stream_stream_rpc_method_handler}[kind]
    body = abort_stream if kind.endswith("_stream") else abort
    return make(body, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


def _as(handler: grpc.RpcMethodHandler, principal: Principal) -> grpc.RpcMethodHandler:
    """The handler, run with `current_principal` set (each call is its own task: no reset needed)."""
    kind, fn = _kind(handler)

    async def unary(request, context):
        current_principal.set(principal)
        return await fn(request, context)

    async def streaming(request, context):
        current_principal.set(principal)
        async for reply in fn(request, context):
            yield reply

    make = {"unary_unary": grpc.unary_unary_rpc_method_handler, "unary_stream": grpc.unary_stream_rpc_method_handler,
            "stream_unary": grpc.stream_unary_rpc_method_handler,
            "stream_stream": grpc.stream_stream_rpc_method_handler}[kind]
    return make(streaming if kind.endswith("_stream") else unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


def _kind(handler: grpc.RpcMethodHandler):
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        fn = getattr(handler, kind)
        if fn is not None:
            return kind, fn
    raise ValueError("handler without a behaviour")


class RemoteVerifier:
    """Verifies tokens by asking the scheduler's AuthService.Authenticate, caching answers for
    `ttl` seconds (a revoked token stops working within that time)."""

    def __init__(self, scheduler_addr: str, ttl: float = 5.0) -> None:
        self.scheduler_addr = scheduler_addr
        self.ttl = ttl
        self._channel: grpc.aio.Channel | None = None
        self._cache: dict[tuple[str, str], tuple[float, object]] = {}

    def _stub(self):
        from lynx.auth.v1 import auth_service_pb2_grpc as auth_grpc

        if self._channel is None:
            self._channel = client_channel(self.scheduler_addr, token=None)
        return auth_grpc.AuthServiceStub(self._channel)

    async def _ask(self, secret: str, job_id: str = ""):
        from lynx.auth.v1 import auth_service_pb2 as auth_pb

        key = (token_hash(secret), job_id)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        reply = await self._stub().Authenticate(auth_pb.AuthenticateRequest(secret=secret, job_id=job_id),
                                                timeout=10.0, wait_for_ready=True)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, reply)
        return reply

    async def __call__(self, secret: str) -> Principal | None:
        reply = await self._ask(secret)
        return principal_of(reply.token) if reply.valid else None

    async def holds_job(self, secret: str, job_id: str) -> bool:
        """Whether the token's runner holds `job_id`'s lease now (admin tokens: always)."""
        reply = await self._ask(secret, job_id)
        return reply.valid and reply.holds_job

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


async def check_holds_job(verifier: RemoteVerifier, context: grpc.aio.ServicerContext, job_id: str) -> None:
    """Abort with PERMISSION_DENIED unless the caller's token is a runner's that holds `job_id` now (or admin)."""
    secret = bearer(context.invocation_metadata())
    try:
        holds = await verifier.holds_job(secret, job_id)
    except grpc.aio.AioRpcError:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "cannot check the job's lease now (the scheduler is "
                                                          "unreachable); try again")
    if not holds:
        principal = current_principal.get()
        who = f"runner {principal.runner_id!r}" if principal and principal.runner_id else "this token"
        log.warning("refused telemetry for job %s from %s: not its lease", job_id, who)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                            f"{who} does not hold job {job_id!r}; telemetry is accepted only for a runner's own jobs")


def principal_of(token) -> Principal:
    """A Principal from a lynx.auth.v1.Token."""
    from lynx.auth.v1 import auth_service_pb2 as auth_pb

    return Principal(token.token_id, auth_pb.Role.Name(token.role).removeprefix("ROLE_").lower(), token.runner_id)


# ---- servers -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ServerSecurity:
    """How a server listens: TLS certificate and key (None: plaintext), a client CA to verify
    client certificates against (`require_client_cert`: mutual TLS is mandatory), token auth."""

    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    require_client_cert: bool = False
    auth: bool = False
    insecure: bool = False

    @property
    def tls(self) -> bool:
        return self.cert is not None

    def server_credentials(self) -> grpc.ServerCredentials | None:
        if self.cert is None:
            return None
        return grpc.ssl_server_credentials([(self.key.read_bytes(), self.cert.read_bytes())],
                                           root_certificates=_read(self.client_ca),
                                           require_client_auth=self.require_client_cert)


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """--tls-cert/--tls-key/--tls-client-ca/--require-client-cert/--auth/--insecure for a service."""
    group = parser.add_argument_group("security")
    group.add_argument("--tls-cert", type=Path, help="serve TLS with this certificate (PEM)")
    group.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    group.add_argument("--tls-client-ca", type=Path, help="verify client certificates against this CA (mutual TLS)")
    group.add_argument("--require-client-cert", action="store_true", help="refuse clients without a certificate")
    group.add_argument("--auth", action="store_true", help="require a bearer token on every call but health checks")
    group.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback address without TLS and auth (logged loudly)")
    group.add_argument("--auth-addr", default="127.0.0.1:50051",
                       help="with --auth, the scheduler that checks tokens (services other than the scheduler)")


def remote_verifier(args: argparse.Namespace) -> RemoteVerifier | None:
    """With --auth, a RemoteVerifier asking the scheduler at --auth-addr; else None."""
    return RemoteVerifier(args.auth_addr) if args.auth else None


def server_security(args: argparse.Namespace) -> ServerSecurity:
    """The ServerSecurity of parsed add_server_args flags; SystemExit on an incomplete pair."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together")
    if (args.tls_client_ca or args.require_client_cert) and not args.tls_cert:
        raise SystemExit("--tls-client-ca and --require-client-cert need --tls-cert and --tls-key")
    if args.require_client_cert and not args.tls_client_ca:
        raise SystemExit("--require-client-cert needs --tls-client-ca")
    return ServerSecurity(args.tls_cert, args.tls_key, args.tls_client_ca, args.require_client_cert, args.auth,
                          args.insecure)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or name to bind) reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(service: str, host: str, security: ServerSecurity) -> None:
    """Refuse (SystemExit) to bind `host` beyond loopback without TLS and auth, unless --insecure,
    which is logged as a warning on every start."""
    if is_loopback(host) or (security.tls and security.auth):
        return
    missing = " and ".join(w for w, on in (("TLS (--tls-cert/--tls-key)", security.tls), ("--auth", security.auth))
                           if not on)
    if not security.insecure:
        raise SystemExit(f"{service}: refusing to listen on {host}, beyond loopback, without {missing}; "
                         "pass --insecure to do it anyway")
    log.warning("INSECURE: %s listens on %s without %s (--insecure): anyone who reaches this address can use it",
                service, host, missing)

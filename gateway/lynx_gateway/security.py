"""The gateway's guards: Host check, JSON-only writes, bearer tokens (forwarded to the services that
authorize them), the token routes (/tokens) and serving HTTPS."""

from __future__ import annotations

import argparse
import contextvars
import logging
import ssl
from pathlib import Path

from aiohttp import web

from lynx.auth.v1 import auth_service_pb2 as auth_pb
from lynx.auth.v1 import auth_service_pb2_grpc as auth_grpc
from lynx_common import names, security
from lynx_common.errors import ValidationError
from lynx_common.rest import to_json
from lynx_gateway.errors import error_response

log = logging.getLogger(__name__)
DEADLINE_S = 30.0
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_METHODS = frozenset({"GET", "HEAD"})
# The dashboard's scripts and styles hold no data: a browser loads them before it has a token.
OPEN_PREFIXES = ("/ui/static/",)
# A page load cannot send a header: the dashboard keeps the token in this SameSite=Strict cookie, which the
# gateway accepts for GET and HEAD only (a cross-site form can never write with it).
TOKEN_COOKIE = "lynx_token"
_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Lynx: token needed</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto">
<h1>Lynx</h1><p>This Lynx requires a token (<code>lynx token create --role read</code>).</p>
<form id="login"><label for="token">Token</label>
<input id="token" type="password" autocomplete="off" required style="width: 100%">
<button type="submit">Open the dashboard</button></form>
<script>
document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = document.getElementById("token").value.trim();
  sessionStorage.setItem("lynx-token", v);
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = "lynx_token=" + encodeURIComponent(v) + "; path=/; SameSite=Strict" + secure;
  location.reload();
});
</script></body></html>"""
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

# The calling request's bearer token; the gateway's channels send it on every gRPC call they make for it.
request_token: contextvars.ContextVar[str | None] = contextvars.ContextVar("lynx_request_token", default=None)


def channel(target: str):
    """A channel to a backend that forwards each request's own token (never the gateway's LYNX_TOKEN)."""
    return security.client_channel(target, token=request_token.get)


def _hostname(host: str) -> str:
    """The name part of a Host header ("[::1]:8080" -> "::1", "a.b:80" -> "a.b")."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def middleware(auth: bool, allowed_hosts: frozenset[str]):
    """Refuse a foreign Host (400), a write that is not application/json (415) and, with `auth`, a
    request without a bearer token (401); pass the token on to the gRPC calls."""

    @web.middleware
    async def guard(request: web.Request, handler):
        host = _hostname(request.headers.get("Host", "")).lower()
        if host not in allowed_hosts:
            allowed = ", ".join(sorted(allowed_hosts))
            return error_response(400, f"Host {host!r} is not served here (allowed: {allowed}; "
                                       "add one with --allowed-host)", "Host")
        if request.method in WRITE_METHODS and request.content_type != "application/json":
            return error_response(415, f"{request.method} needs Content-Type: application/json, got "
                               f"{request.content_type!r}", "Content-Type")
        token = security.bearer([("authorization", request.headers.get("Authorization", ""))])
        if auth and not token and request.method in READ_METHODS:  # the dashboard's page loads: reads only
            token = request.cookies.get(TOKEN_COOKIE, "")
        if auth and not token and request.path not in OPEN_PATHS and not request.path.startswith(OPEN_PREFIXES):
            if request.method in READ_METHODS and (request.path == "/" or request.path.startswith("/ui/")):
                return web.Response(text=_LOGIN_PAGE, status=401, content_type="text/html",
                                    headers={"WWW-Authenticate": "Bearer"})
            return error_response(401, "this gateway requires a token: send `Authorization: Bearer <token>` "
                                       "(LYNX_TOKEN)", headers={"WWW-Authenticate": "Bearer"})
        request_token.set(token or None)
        return await handler(request)

    return guard


def _AUTH_OFF() -> web.Response:  # noqa: N802 - reads as the constant answer it is
    return error_response(404, "token authentication is off; start Lynx with --auth")


class TokenRoutes:
    """POST /tokens, GET /tokens, POST /tokens/{id}/revoke over the scheduler's AuthService (admin only)."""

    def __init__(self, auth: bool) -> None:
        self.auth = auth
        self.stub: auth_grpc.AuthServiceStub | None = None

    def bind(self, scheduler_channel) -> None:
        self.stub = auth_grpc.AuthServiceStub(scheduler_channel)

    async def create(self, request: web.Request) -> web.Response:
        if not self.auth:
            return _AUTH_OFF()
        try:
            body = await request.json()
        except ValueError:
            raise ValidationError("body", "is not valid JSON") from None
        if not isinstance(body, dict):
            raise ValidationError("body", "must be a JSON object")
        role = body.get("role")
        if role not in security.ROLES:
            raise ValidationError("role", f"must be one of {', '.join(security.ROLES)}, got {role!r}")
        for field in ("runner_id", "name"):
            if not isinstance(body.get(field, ""), str):
                raise ValidationError(field, "must be a string")
        reply = await self.stub.CreateToken(auth_pb.CreateTokenRequest(
            role=names.ROLE.value(role), runner_id=body.get("runner_id", ""),
            name=body.get("name", "")), timeout=DEADLINE_S)
        return web.json_response(to_json(reply))

    async def list(self, request: web.Request) -> web.Response:
        if not self.auth:
            return _AUTH_OFF()
        reply = await self.stub.ListTokens(auth_pb.ListTokensRequest(), timeout=DEADLINE_S)
        return web.json_response(to_json(reply))

    async def revoke(self, request: web.Request) -> web.Response:
        if not self.auth:
            return _AUTH_OFF()
        reply = await self.stub.RevokeToken(auth_pb.RevokeTokenRequest(token_id=request.match_info["id"]),
                                            timeout=DEADLINE_S)
        return web.json_response(to_json(reply))

    def routes(self) -> list:
        return [web.post("/tokens", self.create), web.get("/tokens", self.list),
                web.post("/tokens/{id}/revoke", self.revoke)]


def add_args(parser: argparse.ArgumentParser) -> None:
    """--tls-cert/--tls-key/--auth/--insecure/--allowed-host for the gateway."""
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    parser.add_argument("--auth", action="store_true", help="require a bearer token on every route but health")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback address without TLS and auth (logged loudly)")
    parser.add_argument("--allowed-host", action="append", default=[],
                        help="a Host name clients may use besides the bind address, localhost and 127.0.0.1")


def allowed_hosts(bind_host: str, extra: list[str]) -> frozenset[str]:
    return frozenset(h.lower() for h in (*LOOPBACK_NAMES, bind_host, *extra) if h)


def ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The HTTPS context of --tls-cert/--tls-key; None for plain HTTP. Checks the exposure rule first."""
    secure = security.ServerSecurity(args.tls_cert, args.tls_key, auth=args.auth, insecure=args.insecure)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together")
    security.check_exposure("lynx-gateway", args.host, secure)
    if args.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    return context

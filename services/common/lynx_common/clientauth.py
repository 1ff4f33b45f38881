"""The client side of Lynx security: channels with TLS from LYNX_TLS_CA (LYNX_TLS_CERT/LYNX_TLS_KEY for
mutual TLS) that send a bearer token (LYNX_TOKEN or LYNX_TOKEN_FILE) on every call."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import grpc

TOKEN_ENV, CA_ENV, CERT_ENV, KEY_ENV = "LYNX_TOKEN", "LYNX_TLS_CA", "LYNX_TLS_CERT", "LYNX_TLS_KEY"
TOKEN_FILE_ENV = "LYNX_TOKEN_FILE"  # read the token from this file when LYNX_TOKEN is unset (container secrets)


class _AddToken:
    """Adds `authorization: Bearer <token>` to every call; `token` is read per call (the gateway
    forwards each request's own token)."""

    def __init__(self, token: Callable[[], str | None]) -> None:
        self.token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        token = self.token()
        if not token:
            return details
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add("authorization", f"Bearer {token}")
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                          details.wait_for_ready)


# grpc.aio files an interceptor under the first of the four kinds it subclasses: one class per kind.
class _UnaryUnaryToken(_AddToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._details(details), request)


class _UnaryStreamToken(_AddToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(self._details(details), request)


class _StreamUnaryToken(_AddToken, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, details, request_iterator):
        return await continuation(self._details(details), request_iterator)


class _StreamStreamToken(_AddToken, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, details, request_iterator):
        return await continuation(self._details(details), request_iterator)


def env_token(env=os.environ) -> str | None:
    """LYNX_TOKEN, else the contents of the file LYNX_TOKEN_FILE names, else None."""
    if env.get(TOKEN_ENV):
        return env[TOKEN_ENV].strip()
    if env.get(TOKEN_FILE_ENV):
        return Path(env[TOKEN_FILE_ENV]).read_text().strip() or None
    return None


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def channel_credentials(env=os.environ) -> grpc.ChannelCredentials | None:
    """TLS credentials from LYNX_TLS_CA (and LYNX_TLS_CERT/LYNX_TLS_KEY for mutual TLS); None without a CA."""
    if not env.get(CA_ENV):
        return None
    cert, key = env.get(CERT_ENV), env.get(KEY_ENV)
    if bool(cert) != bool(key):
        raise ValueError(f"{CERT_ENV} and {KEY_ENV} go together (mutual TLS): set both or neither")
    return grpc.ssl_channel_credentials(_read(env[CA_ENV]), _read(key), _read(cert))


def client_channel(target: str, options=None, token: str | Callable[[], str | None] | None = "env",
                   env=os.environ) -> grpc.aio.Channel:
    """A grpc.aio channel to `target`: TLS when LYNX_TLS_CA is set, sending `token` on every call
    ("env": LYNX_TOKEN; a callable: asked per call; None: no token)."""
    from lynx_common.server import CLIENT_OPTIONS

    if token == "env":
        token = env_token(env)
    interceptors = []
    if token is not None:
        get = token if callable(token) else (lambda: token)
        interceptors = [kind(get) for kind in (_UnaryUnaryToken, _UnaryStreamToken, _StreamUnaryToken,
                                               _StreamStreamToken)]
    creds = channel_credentials(env)
    options = CLIENT_OPTIONS if options is None else options
    if creds is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)

"""The gateway's outer guards: every error body in the documented JSON shape, and per-client limits.

`json_errors` turns aiohttp's own answers (404 unknown route, 405, 413 body too large) and any
unexpected exception (500) into `{"error": {"message", "field"}}`; `rate_limit` answers 429 to a
client over `requests_per_second`; `StreamSlots` caps a client's concurrent live streams.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from lynx_common import limits

log = logging.getLogger(__name__)


def error_response(status: int, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    """The documented JSON error body."""
    return web.json_response({"error": {"message": message, "field": field or None}}, status=status,
                             headers=headers)


_MESSAGES = {
    404: "no such route: {method} {path}",
    405: "{method} is not allowed on {path}",
    413: "the request body is larger than {cap} bytes (LYNX_LIMIT_HTTP_BODY_BYTES)",
}


@web.middleware
async def json_errors(request: web.Request, handler):
    """aiohttp's HTTP errors and unexpected exceptions answer JSON; successes and redirects pass."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        template = _MESSAGES.get(exc.status)
        message = (template.format(method=request.method, path=request.path, cap=request.app._client_max_size)
                   if template else exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, message, headers=headers)
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(500, "internal error in the gateway; see its log")


_BUCKETS = web.AppKey("rate_buckets", limits.TokenBuckets)
OPEN_PATHS = ("/healthz", "/readyz")


@web.middleware
async def rate_limit(request: web.Request, handler):
    """429 when one client address sends more than requests_per_second (health probes are exempt)."""
    if request.path not in OPEN_PATHS:
        rate = limits.value("requests_per_second")
        if not request.app[_BUCKETS].take(request.remote or "", 1, rate):
            return error_response(429, f"too many requests from {request.remote}: the limit is {rate} per second "
                                       "(LYNX_LIMIT_REQUESTS_PER_SECOND)", headers={"Retry-After": "1"})
    return await handler(request)


class StreamSlots:
    """Concurrent live streams per client address, capped by streams_per_client."""

    def __init__(self) -> None:
        self.open: dict[str, int] = {}

    @contextmanager
    def slot(self, client: str) -> Iterator[None]:
        """Hold one slot for the stream's lifetime; web.HTTPTooManyRequests-like 429 JSON when none is free."""
        cap = limits.value("streams_per_client")
        if self.open.get(client, 0) >= cap:
            raise TooManyStreams(f"client {client} already has {cap} live streams open; the limit is {cap} "
                                 "(LYNX_LIMIT_STREAMS_PER_CLIENT)")
        self.open[client] = self.open.get(client, 0) + 1
        try:
            yield
        finally:
            self.open[client] -= 1
            if not self.open[client]:
                del self.open[client]


class TooManyStreams(Exception):
    """A client asked for one live stream more than streams_per_client."""


def install(app: web.Application) -> None:
    """Register the guards on `app` (outermost first)."""
    app[_BUCKETS] = limits.TokenBuckets(max_keys=10_000)  # one per client address
    app.middlewares.insert(0, rate_limit)
    app.middlewares.insert(0, json_errors)

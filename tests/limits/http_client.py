"""A tiny HTTP client for the limits tests: (status, headers, JSON or bytes) for any request."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def call(base: str, method: str, path: str, body: object = None, raw: bytes | None = None,
         timeout: float = 60) -> tuple[int, dict, object]:
    """Send one request; the reply's JSON when it is JSON, else its bytes."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            status, headers, content = reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        status, headers, content = exc.code, dict(exc.headers), exc.read()
    try:
        return status, headers, json.loads(content)
    except ValueError:
        return status, headers, content


def assert_error(reply: tuple[int, dict, object], status: int, field: str | None = None, says: str = "") -> None:
    """The reply is the documented JSON error: {"error": {"message", "field"}} with this status and field."""
    code, headers, body = reply
    assert code == status, (code, body)
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"]["field"] == field, body
    assert says in body["error"]["message"], body

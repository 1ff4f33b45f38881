"""A small JSON client for the gateway (standard library only)."""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(RuntimeError):
    """The gateway answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Api:
    """GET and POST JSON against the gateway at `base_url`."""

    def __init__(self, base_url: str = DEFAULT_URL, timeout: float = 60.0, token: str | None = None,
                 ca_file: str | None = None) -> None:
        """`token` (default $LYNX_TOKEN) goes as `Authorization: Bearer`; `ca_file` (default $LYNX_TLS_CA)
        verifies an https gateway."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token = token if token is not None else os.environ.get("LYNX_TOKEN", "")
        ca_file = ca_file if ca_file is not None else os.environ.get("LYNX_TLS_CA")
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def open(self, method: str, path: str, body: object | None = None, timeout: float | None = None):
        """The gateway's reply to read (and close) yourself, sent with the token and verified with the CA;
        an error status raises ApiError with the gateway's message."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout, context=self.context)
        except urllib.error.HTTPError as exc:
            try:
                message = json.load(exc)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = exc.reason
            raise ApiError(exc.code, message) from None

    def request(self, method: str, path: str, body: object | None = None) -> object:
        with self.open(method, path, body) as reply:
            return json.load(reply)

    def get_bytes(self, path: str) -> bytes:
        """A non-JSON body (a report, a CSV)."""
        with self.open("GET", path) as reply:
            return reply.read()

    def get(self, path: str) -> object:
        return self.request("GET", path)

    def post(self, path: str, body: object | None = None) -> object:
        return self.request("POST", path, body if body is not None else {})

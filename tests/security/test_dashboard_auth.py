"""With --auth the dashboard asks for a token: a login page for page loads, the token in a SameSite cookie
for reads only, static files open; writes still need the Authorization header."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from harness import SecureStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = SecureStack(tmp_path_factory.mktemp("secure-ui"), runners=())
    try:
        s.start()
        yield s
    finally:
        s.stop()


def _get(stack, path: str, headers: dict | None = None, method: str = "GET", data: bytes | None = None):
    request = urllib.request.Request(stack.ports.gateway_url + path, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=30, context=stack.http.context) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def test_a_browser_without_a_token_gets_the_login_page_and_no_data(stack):
    status, kind, body = _get(stack, "/", {"Accept": "text/html"})
    assert status == 401 and kind.startswith("text/html")
    assert 'id="token"' in body and "lynx token create" in body
    status, kind, _ = _get(stack, "/ui/runners", {"Accept": "text/html"})
    assert status == 401 and kind.startswith("text/html")
    status, kind, body = _get(stack, "/batches")
    assert status == 401 and kind.startswith("application/json") and "token" in body


def test_static_files_are_open_and_the_cookie_opens_pages_for_reading_only(stack):
    status, kind, body = _get(stack, "/ui/static/dashboard.js")
    assert status == 200 and "lynxLogin" in body
    read = stack.token("read")
    status, kind, body = _get(stack, "/", {"Accept": "text/html", "Cookie": f"lynx_token={read}"})
    assert status == 200 and kind.startswith("text/html") and "<table" in body
    status, _, _ = _get(stack, "/", {"Cookie": "lynx_token=lynx_not-a-token"})
    assert status in (401, 403)
    # A write with only the cookie (what a cross-site form could send) is refused: writes need the header.
    admin = stack.admin
    status, _, body = _get(stack, "/batches/x/cancel", {"Cookie": f"lynx_token={admin}",
                                                         "Content-Type": "application/json"}, "POST", b"{}")
    assert status == 401, body


def test_lynx_report_and_results_use_the_token_and_the_ca(stack, tmp_path):
    import os
    import subprocess
    import sys

    from harness import study

    batch = stack.http.ok("POST", "/jobs", study(runs=2))["batch_id"]  # no runner here: it stays pending
    env = {**os.environ, "LYNX_API_URL": stack.ports.gateway_url, "LYNX_TLS_CA": str(stack.ca),
           "LYNX_TOKEN": stack.token("read")}
    out = tmp_path / "report.html"
    made = subprocess.run([sys.executable, "-m", "lynx_cli.main", "report", batch, "-o", str(out)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert out.read_text().lstrip().lower().startswith("<!doctype html")
    shown = subprocess.run([sys.executable, "-m", "lynx_cli.main", "results", batch, "--json"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert '"total": 2' in shown.stdout
    denied = subprocess.run([sys.executable, "-m", "lynx_cli.main", "report", batch, "-o", str(out)],
                            env={**env, "LYNX_TOKEN": ""}, capture_output=True, text=True, timeout=120)
    assert denied.returncode != 0 and "401" in denied.stderr + denied.stdout

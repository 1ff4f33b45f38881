"""The dashboard's pages against a real stack: they render, link up, escape user strings, and serve no CDN."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

pytestmark = pytest.mark.e2e


def test_pages_render_a_finished_batch_and_escape_its_name(http, study):
    name = '<script>alert("x")</script> & co'
    batch_id = http.submit({**study, "name": name, "runs_override": 2})
    final = http.wait(batch_id)
    assert final["batch"]["status"] == "Completed"

    index = http.html("/")
    assert str(escape(name)) in index and name not in index  # escaped, never raw
    row = index[index.index(f'href="/ui/batches/{batch_id}"'):]
    row = row[:row.index("</tr>")]
    assert "✓ Completed" in row and "100.0 %" in row  # status in text and icon, not only colour

    page = http.html(f"/ui/batches/{batch_id}")
    assert name not in page and str(escape(name)) in page
    assert f'sse-connect="/batches/{batch_id}/events"' in page
    assert re.search(r'data-count="Completed">2<', page)
    for link in ("runs.csv", "runs.parquet", "report.html", 'data-action="cancel"'):
        assert link in page
    assert "cdn" not in page.lower() and "https://" not in page  # nothing leaves the gateway

    jobs = http.json("GET", f"/batches/{batch_id}/jobs")["jobs"]
    job_page = http.html(f"/ui/jobs/{jobs[0]['job_id']}")
    assert str(jobs[0]["seed"]) in job_page
    assert "eccentricity" in job_page and "orbit.radius_km" in job_page
    assert "local-runner-01" in job_page  # the attempt's runner
    png = f'<img src="/jobs/{jobs[0]["job_id"]}/artifacts/orbit_position.png"'
    assert png in job_page  # the PNG artifact is shown inline ...
    status, headers, data = http.request("GET", f"/jobs/{jobs[0]['job_id']}/artifacts/orbit_position.png")
    assert status == 200 and data.startswith(b"\x89PNG")  # ... from a route that serves it
    outputs = jobs[0]["result"]["outputs"]
    assert outputs and all(name in job_page for name in outputs)
    runs = http.html(f"/ui/batches/{batch_id}/runs")
    assert all(f"out.{name}" in runs for name in outputs)  # outputs are columns of the runs table

    runners = http.html("/ui/runners")
    assert "local-runner-01" in runners and "● Online" in runners

    overlay_page = http.html(f"/ui/batches/{batch_id}/overlay")
    assert "<option>orbit.radius_km</option>" in overlay_page and name not in overlay_page
    overlay = http.json("GET", f"/ui/batches/{batch_id}/overlay.json?variable=orbit.radius_km&runs=5")
    assert len(overlay["runs"]) == 2 and all(len(r["t"]) == len(r["v"]) > 1 for r in overlay["runs"])


def test_static_files_are_served_from_the_gateway(http):
    for path, marker in (("/ui/static/vendor/htmx.min.js", b"htmx"), ("/ui/static/vendor/uPlot.iife.min.js", b"uPlot"),
                         ("/ui/static/vendor/htmx-ext-sse.min.js", b"sse"), ("/ui/static/dashboard.js", b"lynxLogin")):
        status, _, body = http.request("GET", path)
        assert status == 200 and marker in body, path
    for path in ("/ui/static/..%2Fpages.py", "/ui/static/vendor/..%2F..%2F__init__.py", "/ui/static/nope.js"):
        status, _, body = http.request("GET", path)
        assert status == 404 and b"__future__" not in body, path  # nothing outside static/ is served


def test_unknown_ids_answer_404_not_a_broken_page(http):
    status, _, body = http.request("GET", "/ui/batches/no-such-batch", headers={"accept": "text/html"})
    assert status == 404
    status, _, body = http.request("GET", "/batches/no-such-batch/events")
    assert status == 404

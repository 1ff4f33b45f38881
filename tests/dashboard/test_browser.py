"""A real browser (headless Debian Chromium, driven by Playwright) watches a batch page update live."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
if not os.path.exists(CHROMIUM):
    pytest.skip("no Chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
SHOTS = Path(os.environ.get("LYNX_SCREENSHOTS", "")) if os.environ.get("LYNX_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def test_batch_page_counters_update_live_to_completed(http, study, browser, tmp_path):
    batch_id = http.submit({**study, "name": "browser-watch", "runs_override": 4})
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{http.base}/ui/batches/{batch_id}")
    completed = page.locator('[data-count="Completed"]')
    before = int(completed.inner_text())
    assert before < 4  # the page opened while the batch was running
    page.wait_for_function("document.querySelector('[data-count=\"Completed\"]').textContent === '4'", timeout=120_000)
    assert "Completed" in page.locator("#b-status").inner_text()
    page.wait_for_selector("#live-state:text('finished')", timeout=10_000)  # the stream ended; no reload happened
    page.wait_for_selector('#runs tr[data-run="3"][data-status="Completed"]', timeout=10_000)  # refreshed at the end
    page.wait_for_selector("#chart-pfail canvas", timeout=10_000)  # uPlot drew from the vendored copy
    page.wait_for_selector("#chart-hist canvas", timeout=10_000)
    caption = "#sensitivity table caption:text('Inputs ranked by first-order influence on orbital_period_s')"
    page.wait_for_selector(caption, timeout=20_000)  # from /batches/{id}/summary, for the charts' output
    assert page.locator("#sensitivity tbody tr").count() == 7  # every dispersed input, ranked
    assert page.locator("#sensitivity tbody tr").first.locator("td").nth(0).inner_text() == "semi_major_axis_m"
    assert not errors, errors
    shot = (SHOTS or tmp_path) / "dashboard.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    page.get_by_role("link", name="eccentricity", exact=True).click()  # sorted on the server ...
    page.wait_for_selector("#runs caption:text('sorted by in.eccentricity ascending')", timeout=10_000)
    page.evaluate("htmx.trigger(document.getElementById('runs-filter'), 'submit')")  # ... and a refresh keeps it
    page.wait_for_timeout(1000)
    assert "sorted by in.eccentricity ascending" in page.locator("#runs caption").inner_text()
    page.select_option("#f-reason", "early_termination")  # a filter goes to the server; nothing matches here
    page.click("#runs-filter button[type=submit]")
    page.wait_for_selector("#runs :text('No runs match')", timeout=10_000)

    page.goto(f"{http.base}/ui/batches/{batch_id}/overlay")  # one variable across the runs
    page.wait_for_selector("#chart-overlay canvas", timeout=20_000)
    assert "4 runs drawn of 4 finished" in page.locator("#overlay-caption").inner_text()
    if SHOTS:
        page.screenshot(path=str(SHOTS / "dashboard-overlay.png"), full_page=True)

    jobs = http.json("GET", f"/batches/{batch_id}/jobs")["jobs"]
    page.goto(f"{http.base}/ui/jobs/{jobs[0]['job_id']}")
    page.wait_for_selector("#chart-telemetry canvas", timeout=10_000)
    assert page.locator("img[alt='orbit_position.png']").evaluate("img => img.complete && img.naturalWidth > 0")
    if SHOTS:
        page.screenshot(path=str(SHOTS / "dashboard-run.png"), full_page=True)
    assert not errors, errors


def test_with_a_token_the_page_sends_it_as_a_bearer_header_on_every_call_and_stays_live(http, study, browser):
    batch_id = http.submit({**study, "name": "browser-token", "runs_override": 3})
    page = browser.new_page()
    sent: dict[str, str] = {}
    page.on("request", lambda r: sent.update({r.url.removeprefix(http.base): r.headers.get("authorization", "")}))
    page.goto(f"{http.base}/")
    page.fill("#token", "lynx_test_token")  # auth is off here: the gateway ignores it, the page must still send it
    page.click("#login button[type=submit]")
    assert page.locator("#login-state").inner_text() == "token set for this tab"
    page.goto(f"{http.base}/ui/batches/{batch_id}")
    page.wait_for_function("document.querySelector('[data-count=\"Completed\"]').textContent === '3'", timeout=120_000)
    page.wait_for_selector('#runs tr[data-run="2"][data-status="Completed"]', timeout=10_000)
    for path in (f"/batches/{batch_id}/events", f"/batches/{batch_id}/summary"):
        assert sent.get(path) == "Bearer lynx_test_token", (path, sent)
    assert any(p.startswith(f"/ui/batches/{batch_id}/runs") and v == "Bearer lynx_test_token" for p, v in sent.items())
    assert not any("lynx_test_token" in p for p in sent)  # never in a URL


def test_cancel_from_the_page_stops_a_running_batch(http, study, browser):
    batch_id = http.submit({**study, "name": "browser-cancel", "runs_override": 30})
    page = browser.new_page()
    page.on("dialog", lambda d: d.accept())  # "Cancel this batch?"
    page.goto(f"{http.base}/ui/batches/{batch_id}")
    page.get_by_role("button", name="Cancel batch").click()
    page.wait_for_selector("#act-result:text('cancel: done')", timeout=20_000)
    page.wait_for_selector("#b-status .status-cancelled:text('Cancelled')", timeout=60_000)  # pushed by the events
    final = http.json("GET", f"/batches/{batch_id}")
    assert final["batch"]["status"] == "Cancelled" and final["jobs_by_status"]["Cancelled"] > 0
    assert final["jobs_by_status"]["Completed"] < 30

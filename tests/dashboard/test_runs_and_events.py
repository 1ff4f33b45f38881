"""The runs table is sorted, filtered and paged on the server; the events stream delivers counts and ends."""

from __future__ import annotations

import copy
import json
import re
import urllib.request

import pytest

pytestmark = pytest.mark.e2e


def rows(page: str) -> list[int]:
    """Run ids of the table rows, in page order."""
    return [int(x) for x in re.findall(r'<tr data-run="(\d+)"', page)]


def matching(page: str) -> int:
    return int(re.search(r'data-total="(\d+)"', page).group(1))


def test_runs_table_sorts_filters_and_pages_on_the_server(http, study):
    batch_id = http.submit({**study, "runs_override": 12})
    assert http.wait(batch_id)["batch"]["status"] == "Completed"
    jobs = http.json("GET", f"/batches/{batch_id}/jobs")["jobs"]
    ecc = {j["run_id"]: j["parameters"]["eccentricity"] for j in jobs}
    by_ecc = sorted(ecc, key=lambda r: -ecc[r])
    base = f"/ui/batches/{batch_id}/runs"

    first = http.html(f"{base}?sort=in.eccentricity&order=desc&size=10")
    assert rows(first) == by_ecc[:10] and matching(first) == 12 and "page 1 of 2" in first
    second = http.html(f"{base}?sort=in.eccentricity&order=desc&size=10&page=2")
    assert rows(second) == by_ecc[10:]

    lo, hi = sorted(ecc.values())[3], sorted(ecc.values())[8]
    ranged = http.html(f"{base}?min.in.eccentricity={lo}&max.in.eccentricity={hi}")
    assert rows(ranged) == sorted(r for r, e in ecc.items() if lo <= e <= hi) and matching(ranged) == 6
    form = http.html(f"{base}?rcol=in.eccentricity&rmin={lo}&rmax={hi}&rcol=&rmin=&rmax=&status=Completed")
    assert rows(form) == rows(ranged)  # the page's filter form says the same thing
    assert rows(http.html(f"{base}?status=Failed")) == [] and "No runs match" in http.html(f"{base}?status=Failed")

    status, _, body = http.request("GET", f"{base}?sort=nonsense")
    assert status == 400 and json.loads(body)["error"]["field"] == "sort"
    status, _, body = http.request("GET", f"{base}?min.in.eccentricity=abc")
    assert status == 400 and json.loads(body)["error"]["field"] == "min.in.eccentricity"


def test_runs_table_filters_early_terminated_runs_and_counts_them_by_condition(http, study):
    body = copy.deepcopy(study)
    body["config"]["early_termination"] = {"enabled": True, "check_frequency_hz": 10.0, "conditions": [
        {"variable": "orbit.radius_km", "condition": "> 1", "description": "always fires"}]}
    batch_id = http.submit({**body, "runs_override": 3})
    final = http.wait(batch_id)
    assert final["batch"]["status"] == "Failed" and final["early_terminated_jobs"] == 3
    page = http.html(f"/ui/batches/{batch_id}/runs?status=Failed&reason=early_termination")
    assert rows(page) == [0, 1, 2] and "orbit.radius_km &gt; 1" in page
    assert rows(http.html(f"/ui/batches/{batch_id}/runs?status=Completed")) == []
    charts = http.json("GET", f"/ui/batches/{batch_id}/charts.json")
    assert charts["by_condition"] == {"orbit.radius_km > 1": 3}
    assert charts["convergence"]["p"][-1] == 1.0 and charts["convergence"]["n"][-1] == 3

    job = http.json("GET", f"/batches/{batch_id}/jobs")["jobs"][0]
    job_page = http.html(f"/ui/jobs/{job['job_id']}")
    assert "early_termination" in job_page
    conditions = json.loads(re.search(r'id="conditions">(.*?)</script>', job_page).group(1))
    assert [c["parsed"] for c in conditions] == [[">", 1.0]]  # the threshold line the telemetry chart draws
    termination = json.loads(re.search(r'id="termination">(.*?)</script>', job_page).group(1))
    assert termination["variable"] == "orbit.radius_km"  # where the chart marks the firing moment


def events(http, batch_id: str, timeout: float = 120.0) -> list[tuple[str, dict]]:
    """Read the whole events stream of a batch: (event, data) pairs until the server closes it."""
    out, name = [], None
    with urllib.request.urlopen(http.base + f"/batches/{batch_id}/events", timeout=timeout) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        for raw in reply:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[6:])))
    return out


def test_events_stream_delivers_counts_and_finished_jobs_and_ends(http, study):
    batch_id = http.submit({**study, "runs_override": 4})
    got = events(http, batch_id)
    names = [n for n, _ in got]
    assert names[:2] == ["status", "counts"] and names[-1] == "end"
    assert got[-1][1]["status"] == "Completed" and got[-1][1]["jobs_by_status"]["Completed"] == 4
    finished = [d["finished"] for n, d in got if n == "counts"]
    assert finished == sorted(finished) and finished[-1] == 4 and len(set(finished)) > 1  # progress arrived live
    announced = [d["job_id"] for n, d in got if n == "job_finished"]
    assert len(announced) == len(set(announced))  # each run at most once ...
    assert 4 - got[1][1]["finished"] <= len(announced) <= 4  # ... and every run that finished while watching
    assert set(announced) <= {j["job_id"] for j in http.json("GET", f"/batches/{batch_id}/jobs")["jobs"]}

    again = events(http, batch_id, timeout=10)  # a finished batch: the state at once, then the end
    assert [n for n, _ in again] == ["status", "counts", "end"]

"""`lynx submit --wait` and `lynx run` exit 0 pass, 1 fail, 2 bad config, 3 unreachable or cancelled."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest
from ci_harness import HERE, LYNX, REPO, lynx, study

from lynx_cli.stack import free_port

pytestmark = pytest.mark.e2e

# Latin hypercube with 4 runs and seed 7: one x in each quarter of [0, 1].
HALF_FAIL = {"dispersions": {"fail_above": {"distribution": {"type": "constant", "value": 0.5}}}}
EARLY = {
    "early_termination": {
        "enabled": True,
        "check_frequency_hz": 20.0,
        "conditions": [{"variable": "ci.x", "condition": "> 0.75", "description": "x left the safe region"}],
    }
}


def last_line(done: subprocess.CompletedProcess) -> str:
    return done.stdout.strip().splitlines()[-1]


def test_a_passing_study_exits_0_and_says_why(live, tmp_path):
    done = lynx("submit", str(study(tmp_path)), "--wait", "--url", live.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert last_line(done) == "study passed: 4/4 runs succeeded, 0 failed; 0 counted, at most 0 allowed"


def test_a_failing_study_exits_1_unless_the_failures_are_allowed(live, tmp_path):
    config = str(study(tmp_path, **HALF_FAIL))
    done = lynx("submit", config, "--wait", "--url", live.url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert last_line(done) == "study failed: 2/4 runs succeeded, 2 failed; 2 counted against at most 0 allowed"
    allowed = lynx("submit", config, "--wait", "--url", live.url, "--max-failures", "2")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert last_line(allowed).startswith("study passed: 2/4 runs succeeded")
    rate = lynx("submit", config, "--wait", "--url", live.url, "--max-failure-rate", "0.25")
    assert rate.returncode == 1 and "at most 1 allowed" in last_line(rate)


def test_early_terminations_fail_the_study_unless_allowed(live, tmp_path):
    config = str(study(tmp_path, **EARLY))
    strict = lynx("submit", config, "--wait", "--url", live.url)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "3/4 runs succeeded, 1 failed, 1 early-terminated" in last_line(strict)
    lenient = lynx("submit", config, "--wait", "--url", live.url, "--allow-early-termination")
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert "1 early-terminated (allowed); 0 counted" in last_line(lenient)


def test_a_bad_config_or_usage_exits_2_naming_the_problem(live, tmp_path):
    bad = study(tmp_path, monte_carlo={"sampling_method": "astrology"})
    done = lynx("submit", str(bad), "--wait", "--url", live.url)
    assert done.returncode == 2 and "monte_carlo.sampling_method" in done.stderr
    missing = lynx("submit", str(tmp_path / "nope.yaml"), "--wait", "--url", live.url)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    usage = lynx("submit", "--wait", "--max-failure-rate", "1.5", str(bad))
    assert usage.returncode == 2 and "--max-failure-rate" in usage.stderr
    assert "Traceback" not in done.stderr + missing.stderr + usage.stderr


def test_an_unreachable_stack_exits_3(tmp_path):
    done = lynx("submit", str(study(tmp_path)), "--wait", "--url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "cannot reach the gateway" in done.stderr and "Traceback" not in done.stderr


def test_a_cancelled_batch_exits_3(live, tmp_path):
    slow = study(tmp_path, dispersions={"sleep_s": {"distribution": {"type": "constant", "value": 30.0}}})
    proc = subprocess.Popen(
        [*LYNX, "submit", str(slow), "--wait", "--url", live.url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        reply = ""
        while not reply.rstrip().endswith("}"):
            reply += proc.stdout.readline()
        batch_id = json.loads(reply)["batch_id"]
        time.sleep(1.0)
        request = urllib.request.Request(
            f"{live.url}/batches/{batch_id}/cancel",
            data=b"{}",
            method="POST",
            headers={"content-type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=30).close()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, out + err
    assert out.strip().splitlines()[-1].startswith(f"batch {batch_id} was cancelled")


def test_lynx_run_gates_too(tmp_path):
    done = lynx(
        "run",
        str(study(tmp_path, **HALF_FAIL)),
        "--runner-config",
        str(HERE / "runner-threshold.yaml"),
        "--data-dir",
        str(tmp_path / "data"),
        "--junit",
        str(tmp_path / "junit.xml"),
        env={"LYNX_RUNNER_OUTPUT_ROOT": str(tmp_path / "runs")},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert last_line(done).startswith("study failed: 2/4 runs succeeded")
    assert (tmp_path / "junit.xml").read_text().count("<testcase ") == 4


def test_a_batch_aborted_by_its_failure_budget_exits_1_with_the_scheduler_s_reason(live, tmp_path):
    budget = {"max_failed_jobs": 1, "max_parallel_jobs": 1, "max_retries": 0, "job_timeout_seconds": 60}
    done = lynx(
        "submit", str(study(tmp_path, compute=budget, **HALF_FAIL)), "--wait", "--url", live.url, "--max-failures", "3"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert last_line(done).startswith("study failed: batch Failed (")

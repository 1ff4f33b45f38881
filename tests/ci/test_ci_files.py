"""The CI files of a study: JUnit XML valid against Jenkins' schema, and the Markdown summary of its answer."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import xmlschema
from ci_harness import HERE, lynx, study
from scipy.stats import binomtest

pytestmark = pytest.mark.e2e

# 4 Latin-hypercube runs (seed 7), one x per quarter of [0, 1]: x > 0.75 stops early, 0.5 < x <= 0.75 exits 1.
MIXED = {
    "dispersions": {"fail_above": {"distribution": {"type": "constant", "value": 0.5}}},
    "early_termination": {
        "enabled": True,
        "check_frequency_hz": 20.0,
        "conditions": [{"variable": "ci.x", "condition": "> 0.75", "description": "x left the safe region"}],
    },
}


@pytest.fixture(scope="module")
def mixed(live, tmp_path_factory):
    """One study with two passing runs, one failing run and one early-terminated run, and its CI files."""
    tmp = tmp_path_factory.mktemp("mixed")
    step_summary = tmp / "step_summary.md"
    step_summary.write_text("previous step\n")
    done = lynx(
        "submit",
        str(study(tmp, **MIXED)),
        "--wait",
        "--url",
        live.url,
        "--junit",
        str(tmp / "junit.xml"),
        "--summary-md",
        str(tmp / "summary.md"),
        env={"GITHUB_STEP_SUMMARY": str(step_summary)},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    return tmp, done


def test_the_junit_xml_is_valid_against_the_jenkins_schema(mixed):
    tmp, _ = mixed
    xmlschema.XMLSchema(HERE / "junit-10.xsd").validate(tmp / "junit.xml")


def test_the_junit_xml_has_one_case_per_run_with_parameters_and_reasons(mixed):
    tmp, done = mixed
    root = ET.parse(tmp / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("4", "2")
    cases = {}
    for suite in root.iter("testsuite"):
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        (case,) = suite.iter("testcase")
        cases[float(props["parameter.x"])] = (props, case)
    assert len(cases) == 4
    xs = sorted(cases)
    for x in xs[:2]:
        props, case = cases[x]
        assert case.find("failure") is None
        assert float(props["output.y"]) == pytest.approx(2 * x)  # the run's summary.json, through the results
    props, case = cases[xs[2]]  # 0.5 < x <= 0.75: the scenario exits 1
    failure = case.find("failure")
    assert failure.get("type") == "exited" and "exit" in failure.get("message")
    assert f"x = {xs[2]:.3f} is above 0.5" in case.find("system-err").text
    props, case = cases[xs[3]]  # x > 0.75: stopped by the condition
    failure = case.find("failure")
    assert failure.get("type") == "early_termination"
    assert failure.get("message").startswith("early termination: ci.x > 0.75 (value ")
    assert failure.get("message").endswith("x left the safe region")
    assert "study failed: 2/4 runs succeeded" in failure.text
    assert props["seed"].isdigit() and props["runner_id"] == "ci-runner" and props["attempts"] == "1"


def test_the_markdown_summary_answers_the_study(mixed):
    tmp, done = mixed
    text = (tmp / "summary.md").read_text()
    assert text.startswith("## ❌ Lynx study: CI threshold")
    assert f"**{done.stdout.strip().splitlines()[-1]}**" in text
    assert "| 4 | 4 | 2 | 2 | 1 |" in text  # runs, finished, succeeded, failed, early-terminated
    ci = binomtest(2, 4).proportion_ci(0.95, method="wilson")
    assert f"**Failure probability** 0.5 — Wilson 95 % [{ci.low:.4g}, {ci.high:.4g}]" in text
    # The outputs table, from the summary route: y over the runs that wrote a summary.json.
    row = next(line for line in text.splitlines() if line.startswith("| `y` |"))
    assert row.split(" | ")[1] == "3"  # the run that exited 1 wrote its summary.json first
    worst = text[text.index("### Worst runs") :].splitlines()
    rows = [r for r in worst if r.startswith("| ") and not r.startswith("| run")]
    assert sorted(r.split(" | ")[2] for r in rows) == ["early_termination", "exited"]
    # GitHub Actions shows $GITHUB_STEP_SUMMARY: the summary is appended, earlier steps' text kept.
    assert (tmp / "step_summary.md").read_text() == "previous step\n" + text + "\n"

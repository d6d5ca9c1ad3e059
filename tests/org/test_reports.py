"""Report formats of ``org check``: SARIF validates against the SARIF 2.1.0 schema, OCSF
events against the published OCSF Compliance Finding class (pydantic-ocsf, 1.7.0), JUnit
parses, JSON and text carry every outcome, frameworks group by control."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

from claudesec.audit.export.ocsf import OCSF_VERSION
from claudesec.config import OrgSuppressionConfig
from claudesec.org.catalogue import CHECKS
from claudesec.org.reports import get_format
from claudesec.org.reports.grouping import by_control
from claudesec.org.reports.ocsf import events
from tests.org.helpers import SARIF_SCHEMA, SETTINGS, clean_run, compliance_finding, messy_run

SUPPRESSED = replace(
    SETTINGS,
    suppressions=(
        OrgSuppressionConfig(check="ORG-KEY-002", resource="*", reason="legacy keys, ticket SEC-1"),
    ),
)


def _runs() -> list[Any]:
    return [messy_run(), clean_run(), messy_run(config=SUPPRESSED), messy_run(key_markings=None)]


@pytest.mark.parametrize("index", range(4))
def test_sarif_is_valid_against_the_sarif_2_1_0_schema(index: int) -> None:
    run = _runs()[index]
    document = json.loads(get_format("sarif")(run))
    jsonschema.validate(
        document, json.loads(SARIF_SCHEMA.read_text()), cls=jsonschema.Draft4Validator
    )
    sarif = document["runs"][0]
    assert len(sarif["tool"]["driver"]["rules"]) == len(CHECKS)
    assert len(sarif["results"]) == sum(len(o.findings) for o in run.outcomes)
    for result in sarif["results"]:
        assert sarif["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_keeps_suppressed_findings_with_their_justification() -> None:
    sarif = json.loads(get_format("sarif")(messy_run(config=SUPPRESSED)))["runs"][0]
    suppressed = [r for r in sarif["results"] if r.get("suppressions")]
    assert suppressed and all(r["ruleId"] == "ORG-KEY-002" for r in suppressed)
    assert "ticket SEC-1" in suppressed[0]["suppressions"][0]["justification"]


@pytest.mark.parametrize("index", range(4))
def test_every_ocsf_event_validates_against_the_compliance_finding_class(index: int) -> None:
    run = _runs()[index]
    docs = list(events(run))
    assert len(docs) >= len(run.outcomes)
    model = compliance_finding()
    for doc in docs:
        event = model.model_validate(doc)
        assert event.class_uid == 2003
        assert doc["metadata"]["version"] == OCSF_VERSION
        # Only our own namespace is outside the schema.
        extra = set((event.model_extra or {}).keys())
        assert extra <= set(), extra


def test_ocsf_status_says_fail_pass_unknown_and_suppressed() -> None:
    docs = list(events(messy_run(config=SUPPRESSED, key_markings=None)))
    statuses = {(d["compliance"]["status"], d["status"]) for d in docs}
    assert ("Fail", "New") in statuses
    assert ("Fail", "Suppressed") in statuses
    assert ("Skipped", "New") in statuses  # skipped: the key store was not read
    clean = {d["compliance"]["status"] for d in events(clean_run())}
    assert clean == {"Pass"}


def test_the_ocsf_schema_check_has_teeth() -> None:
    from pydantic import ValidationError

    doc = next(iter(events(messy_run())))
    del doc["compliance"]
    with pytest.raises(ValidationError):
        compliance_finding().model_validate(doc)


def test_the_sarif_schema_check_has_teeth() -> None:
    document = json.loads(get_format("sarif")(messy_run()))
    document["runs"][0]["results"][0]["level"] = "severe"  # not a SARIF level
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            document, json.loads(SARIF_SCHEMA.read_text()), cls=jsonschema.Draft4Validator
        )


def test_ocsf_lines_are_what_the_export_sinks_send() -> None:
    from claudesec.audit.export.interface import dumps

    run = messy_run()
    lines = get_format("ocsf")(run).splitlines()
    assert [line.encode() for line in lines] == [dumps(d) for d in events(run)]


def test_junit_has_one_case_per_check_with_failures_and_skips() -> None:
    run = messy_run(key_markings=None)
    root = ET.fromstring(get_format("junit")(run))  # noqa: S314 - our own output
    cases = root.findall(".//testcase")
    assert len(cases) == len(CHECKS)
    assert int(root.get("failures", "0")) == run.count("fail")
    assert int(root.get("skipped", "0")) == run.count("skip") == 3
    failing = next(c for c in cases if c.get("name", "").startswith("ORG-CC-001"))
    assert "bypassPermissions" in (failing.find("failure").text or "")  # type: ignore[union-attr]


def test_json_report_carries_every_outcome_and_the_summary() -> None:
    run = messy_run()
    doc = json.loads(get_format("json")(run, "soc2"))
    assert doc["summary"]["checks"] == len(CHECKS)
    assert doc["summary"]["findings"] == len(run.findings)
    assert {c["id"] for c in doc["checks"]} == {c.id for c in CHECKS}
    controls = {c["id"]: c for c in doc["framework"]["controls"]}
    assert controls["CC6.1"]["status"] == "fail"
    assert "ORG-KEY-001" in controls["CC6.1"]["checks"]


@pytest.mark.parametrize("framework", ["soc2", "iso27001", "cis"])
def test_grouping_by_framework_covers_every_check(framework: str) -> None:
    controls = by_control(clean_run(), framework)
    covered = {o.check.id for c in controls for o in c.outcomes}
    assert covered == {c.id for c in CHECKS}
    assert all(c.status == "pass" for c in controls)


def test_text_report_names_findings_skips_and_the_fix() -> None:
    text = get_format("text")(messy_run(key_markings=None))
    assert "FAIL ORG-CC-001 [critical]" in text
    assert "skip ORG-KEY-012" in text and "key store was not read" in text
    assert "fix: Console:" in text
    assert text.rstrip().splitlines()[-1].startswith("claudesec org check (org_sample): 61 checks")
    grouped = get_format("text")(messy_run(), "cis")
    assert "CIS Controls v8:" in grouped and "\n5.4: FAIL" in grouped

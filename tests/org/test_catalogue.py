"""The catalogue is data: unique ids, every field filled, mappings in each framework's form,
and every check fails on a failing inventory and passes on a passing one."""

from __future__ import annotations

import re

import pytest

from claudesec.org import samples
from claudesec.org.catalogue import CHECKS
from claudesec.org.check import CheckRun
from claudesec.org.model import KIND_BY_NAME
from claudesec.org.rules import Check
from tests.org.helpers import NOW, clean_run, messy_run

# Kinds read beyond the inventory contract's RESOURCE_KINDS (Claude Code settings documents).
EXTRA_KINDS = {"claude_code_default_settings", "claude_code_group_settings_documents"}


def test_the_catalogue_has_at_least_40_checks_with_unique_ids() -> None:
    ids = [c.id for c in CHECKS]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"ORG-[A-Z]+-\d{3}", i) for i in ids), ids


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_every_check_is_complete_and_mapped(check: Check) -> None:
    for text in (check.title, check.rationale, check.console, check.api):
        assert text.strip()
    assert check.soc2 and all(re.fullmatch(r"(CC\d\.\d|A1\.\d|C1\.\d)", c) for c in check.soc2)
    assert check.iso27001 and all(re.fullmatch(r"A\.[5-8]\.\d{1,2}", c) for c in check.iso27001)
    assert check.cis and all(re.fullmatch(r"\d{1,2}\.\d{1,2}", c) for c in check.cis)
    assert check.needs and set(check.needs) <= set(KIND_BY_NAME) | EXTRA_KINDS


def _outcome(run: CheckRun, check_id: str) -> tuple[str, str]:
    found = next(o for o in run.outcomes if o.check.id == check_id)
    return found.status, found.reason


# The failing inventory of each check is the messy organisation, except where a check needs
# the opposite of what others need (no telemetry at all).
FAILING = {"ORG-TEL-005": samples.messy_no_telemetry}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_every_check_fails_on_its_failing_inventory(check: Check) -> None:
    build = FAILING.get(check.id, samples.messy)
    run = messy_run(build(NOW), only=[check.id])
    status, reason = _outcome(run, check.id)
    assert status == "fail", reason
    assert all(f.check_id == check.id and f.resource and f.message for f in run.findings)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_every_check_passes_on_the_clean_inventory(check: Check) -> None:
    status, reason = _outcome(clean_run(only=[check.id]), check.id)
    assert status == "pass", reason


def test_the_messy_organisation_fails_every_check_but_one() -> None:
    run = messy_run()
    assert {o.check.id for o in run.outcomes if o.status != "fail"} == {"ORG-TEL-005"}
    assert run.exit_code == 1
    assert clean_run().exit_code == 0


def test_docs_org_check_md_is_generated_from_the_catalogue() -> None:
    from pathlib import Path

    from claudesec.org.docs import markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "org-check.md"
    assert doc.read_text(encoding="utf-8") == markdown(), "run scripts/update-org-docs"
    for check in CHECKS:
        assert f"### {check.id}" in markdown()

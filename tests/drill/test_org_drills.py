"""The posture drills: the offline one passes (each critical check fires on the messy org,
none on the clean one) and fails when a critical check stops firing; the live one is skipped
without credentials with the reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from claudesec.config import Config
from claudesec.drill.catalogue import select
from claudesec.drill.drills.org import OrgPostureCritical
from claudesec.drill.model import Status
from claudesec.drill.runner import run_drills
from claudesec.drill.settings import DrillSettings
from claudesec.org import samples
from claudesec.org.model import OrgInventory


def test_the_offline_posture_drill_proves_every_critical_check_fires(tmp_path: Path) -> None:
    report = run_drills(select(("org-posture-critical",)), temp_root=str(tmp_path))
    [result] = report.results
    assert result.status is Status.BLOCKED, result.message
    assert any("ORG-CC-001" in line and "ORG-KEY-008" in line for line in result.evidence)


class _TidiedOrg(OrgPostureCritical):
    """The drill over a messy organisation whose org:admin federation rule was removed."""

    name = "org-posture-critical-tidied"

    def organisations(self, now: datetime) -> tuple[OrgInventory, OrgInventory]:
        messy, clean = super().organisations(now)
        rules = [r for r in messy.items("federation_rules") if r["id"] != "fdrl_admin"]
        return replace(messy, lists={**messy.lists, "federation_rules": tuple(rules)}), clean


class _NoisyOrg(OrgPostureCritical):
    """The drill over a 'clean' organisation that holds a content-mode telemetry export."""

    name = "org-posture-critical-noisy"

    def organisations(self, now: datetime) -> tuple[OrgInventory, OrgInventory]:
        messy, clean = super().organisations(now)
        leak = samples.telemetry(samples._Clock(now), "tdst_leak", content_mode="content")
        return messy, replace(clean, lists={**clean.lists, "telemetry_destinations": (leak,)})


def test_the_drill_fails_when_a_critical_check_does_not_fire(tmp_path: Path) -> None:
    [result] = run_drills([_TidiedOrg], temp_root=str(tmp_path)).results
    assert result.status is Status.FAILED
    assert result.evidence == ("ORG-FED-004",)


def test_the_drill_fails_when_a_check_fires_on_the_clean_org(tmp_path: Path) -> None:
    [result] = run_drills([_NoisyOrg], temp_root=str(tmp_path)).results
    assert result.status is Status.FAILED
    assert result.evidence == ("ORG-TEL-001 tdst_leak",)


def test_the_live_posture_drill_is_skipped_without_an_admin_key(tmp_path: Path) -> None:
    settings = DrillSettings(config=Config(), environ={})
    [result] = run_drills(
        select(("live-org-posture",)), settings=settings, temp_root=str(tmp_path)
    ).results
    assert result.status is Status.SKIPPED
    assert "ANTHROPIC_ADMIN_KEY is not set" in result.message

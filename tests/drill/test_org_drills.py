"""The posture drills: the offline one passes (each critical check fires on the emulator's
messy organisation, read over HTTP, none on the clean one) and fails when a critical check
stops firing or a check fires on a clean organisation; the live one is skipped without
credentials with the reason."""

from __future__ import annotations

from pathlib import Path

from claudesec.config import Config
from claudesec.drill.catalogue import select
from claudesec.drill.drills.org import OrgPostureCritical
from claudesec.drill.model import Status
from claudesec.drill.runner import run_drills
from claudesec.drill.settings import DrillSettings


def test_the_offline_posture_drill_proves_every_critical_check_fires(tmp_path: Path) -> None:
    report = run_drills(select(("org-posture-critical",)), temp_root=str(tmp_path))
    [result] = report.results
    assert result.status is Status.BLOCKED, result.message
    assert any("ORG-CC-001" in line and "ORG-KEY-008" in line for line in result.evidence)


class _TidiedOrg(OrgPostureCritical):
    """The drill over a 'messy' organisation that has only the clean one's bypass defect:
    the departed user's key and the org:admin federation rule are gone."""

    name = "org-posture-critical-tidied"
    messy_org = "clean+ORG-CC-001"


class _NoisyOrg(OrgPostureCritical):
    """The drill over a 'clean' organisation that holds a content-mode telemetry export."""

    name = "org-posture-critical-noisy"
    clean_org = "clean+ORG-TEL-001"


def test_the_drill_fails_when_a_critical_check_does_not_fire(tmp_path: Path) -> None:
    [result] = run_drills([_TidiedOrg], temp_root=str(tmp_path)).results
    assert result.status is Status.FAILED
    assert result.evidence == ("ORG-KEY-008", "ORG-FED-004")


def test_the_drill_fails_when_a_check_fires_on_the_clean_org(tmp_path: Path) -> None:
    [result] = run_drills([_NoisyOrg], temp_root=str(tmp_path)).results
    assert result.status is Status.FAILED
    [noise] = result.evidence
    assert noise.startswith("ORG-TEL-001 teldest_")


def test_the_live_posture_drill_is_skipped_without_an_admin_key(tmp_path: Path) -> None:
    settings = DrillSettings(config=Config(), environ={})
    [result] = run_drills(
        select(("live-org-posture",)), settings=settings, temp_root=str(tmp_path)
    ).results
    assert result.status is Status.SKIPPED
    assert "ANTHROPIC_ADMIN_KEY is not set" in result.message

"""How a run judges: unreadable kinds skip (never pass), usage that cannot prove disuse skips,
suppressions need a reason and expire, the baseline hides known findings, thresholds."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from claudesec.config import OrgSuppressionConfig, load_config
from claudesec.config_check import check_config
from claudesec.errors import ConfigError, UsageError
from claudesec.org import samples
from claudesec.org.check import read_baseline, write_baseline
from claudesec.org.model import RESOURCE_KINDS
from claudesec.org.rules import Severity
from tests.org.helpers import NOW, SETTINGS, clean_run, messy_run, with_kind, without


@pytest.mark.parametrize("kind", [k.name for k in RESOURCE_KINDS], ids=str)
def test_a_kind_that_could_not_be_read_skips_its_checks_never_passes_them(kind: str) -> None:
    run = clean_run(without(samples.clean(NOW), kind))
    for outcome in run.outcomes:
        if kind in outcome.check.needs:
            assert outcome.status == "skip"
            assert f"{kind} unavailable (forbidden)" in outcome.reason


def test_an_empty_kind_is_read_and_judged() -> None:
    run = messy_run(with_kind(samples.messy(NOW), "spend_limits", []), only=["ORG-LIM-003"])
    assert run.outcomes[0].status == "fail"


def test_a_key_used_inside_the_window_is_never_called_unused() -> None:
    inventory = samples.messy(NOW)
    used = {**(inventory.key_last_used or {}), "apikey_unused": NOW - timedelta(days=29)}
    run = messy_run(replace(inventory, key_last_used=used), only=["ORG-KEY-007"])
    assert run.outcomes[0].status == "pass"


def test_unused_keys_are_skipped_when_usage_could_not_be_read_or_is_too_short() -> None:
    run = messy_run(replace(samples.messy(NOW), key_last_used=None), only=["ORG-KEY-007"])
    assert run.outcomes[0].status == "skip"
    assert "usage could not be read" in run.outcomes[0].reason
    short = replace(samples.messy(NOW), usage_window_days=7)
    run = messy_run(short, only=["ORG-KEY-007"])
    assert run.outcomes[0].status == "skip"
    assert "usage covers 7 days" in run.outcomes[0].reason


def test_a_young_key_is_not_unused_yet() -> None:
    inventory = samples.messy(NOW)
    keys = [
        {**k, "created_at": (NOW - timedelta(days=3)).isoformat()}
        if k["id"] == "apikey_unused"
        else k
        for k in inventory.items("api_keys")
    ]
    run = messy_run(with_kind(inventory, "api_keys", keys), only=["ORG-KEY-007"])
    assert run.outcomes[0].status == "pass"


def test_checks_needing_the_key_store_skip_without_it() -> None:
    run = messy_run(key_markings=None, only=["ORG-KEY-012", "ORG-DRIFT-001", "ORG-DRIFT-002"])
    assert [o.status for o in run.outcomes] == ["skip"] * 3
    assert "key store was not read" in run.outcomes[0].reason


def test_federation_lint_findings_are_org_fed_001_and_a_run_without_them_skips_it() -> None:
    from claudesec.org.federation import UNAVAILABLE, lint

    found = lint(samples.messy(NOW))
    assert found, "the messy organisation's over-broad rule must be linted"
    assert any(hit.message.startswith("FED0") for hit in found)
    run = messy_run(federation_findings=found, only=["ORG-FED-001"])
    assert run.outcomes[0].status == "fail"
    assert lint(samples.clean(NOW)) == ()
    skipped = messy_run(federation_findings=None, only=["ORG-FED-001"])
    assert skipped.outcomes[0].status == "skip"
    assert skipped.outcomes[0].reason == UNAVAILABLE


def test_conditional_checks_are_skipped_when_the_config_requires_nothing() -> None:
    plain = replace(SETTINGS, required_inference_geos=(), require_cmk=False)
    run = messy_run(config=plain, only=["ORG-GEO-001", "ORG-CMK-001"])
    assert [o.status for o in run.outcomes] == ["skip", "skip"]
    assert "required_inference_geos is empty" in run.outcomes[0].reason


def test_claude_code_content_checks_skip_in_organization_mode() -> None:
    inventory = with_kind(
        samples.messy(NOW),
        "claude_code_managed_settings",
        {
            "type": "claude_code_managed_settings_configuration",
            "mode": {"type": "organization"},
            "mode_updated_at": None,
            "rbac_group_order": [],
            "rbac_group_order_version": "v0",
        },
    )
    run = messy_run(inventory, only=["ORG-CC-001"])
    assert run.outcomes[0].status == "skip"
    assert "organization mode" in run.outcomes[0].reason


def _suppress(**fields: str) -> OrgSuppressionConfig:
    return OrgSuppressionConfig(**fields)


def test_a_suppression_hides_its_finding_with_the_reason() -> None:
    rule = _suppress(
        check="ORG-KEY-002", resource="apikey_old", reason="legacy batch job", expires="2027-01-31"
    )
    run = messy_run(config=replace(SETTINGS, suppressions=(rule,)), only=["ORG-KEY-002"])
    assert run.findings == ()
    assert [f.suppressed for f in run.suppressed] == ["suppression: legacy batch job"]
    assert run.exit_code == 0


def test_an_expired_suppression_stops_suppressing_and_warns() -> None:
    rule = _suppress(
        check="ORG-KEY-002", resource="apikey_*", reason="legacy", expires="2026-12-02"
    )
    run = messy_run(config=replace(SETTINGS, suppressions=(rule,)), only=["ORG-KEY-002"])
    assert [f.resource for f in run.findings] == ["apikey_old"]
    assert any("expired on 2026-12-02" in w for w in run.warnings)


def test_a_suppression_only_covers_its_resource() -> None:
    rule = _suppress(check="ORG-TEL-001", resource="tdst_other", reason="x")
    run = messy_run(config=replace(SETTINGS, suppressions=(rule,)), only=["ORG-TEL-001"])
    assert len(run.findings) == 1


def test_a_suppression_without_a_reason_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "claudesec.toml"
    config.write_text('[[org.suppressions]]\ncheck = "ORG-KEY-002"\nresource = "apikey_old"\n')
    loaded = load_config(config)
    with pytest.raises(ConfigError, match="has no reason"):
        messy_run(config=loaded.config.org)
    problems = check_config(config).problems
    assert any("has no reason" in p.message for p in problems)


def test_suppression_of_an_unknown_check_or_with_a_bad_date_is_a_config_error(
    tmp_path: Path,
) -> None:
    config = tmp_path / "claudesec.toml"
    config.write_text(
        '[[org.suppressions]]\ncheck = "ORG-NOPE-001"\nreason = "x"\n'
        '[[org.suppressions]]\ncheck = "ORG-KEY-002"\nreason = "x"\nexpires = "31/01/2027"\n'
    )
    messages = [p.message for p in check_config(config).problems]
    assert any("names no check" in m for m in messages)
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        messy_run(
            config=replace(
                load_config(config).config.org,
                suppressions=(_suppress(check="ORG-KEY-002", reason="x", expires="31/01/2027"),),
            )
        )


def test_the_baseline_hides_known_findings_and_new_ones_still_fail(tmp_path: Path) -> None:
    path = tmp_path / "org-baseline.json"
    assert write_baseline(messy_run(), path) == len(messy_run().findings)
    known = read_baseline(path)
    assert messy_run(baseline=known).findings == ()
    inventory = samples.messy(NOW)
    extra = samples.telemetry(samples._Clock(NOW), "tdst_new", content_mode="content")
    more = with_kind(
        inventory, "telemetry_destinations", [*inventory.items("telemetry_destinations"), extra]
    )
    assert [f.resource for f in messy_run(more, baseline=known).findings] == ["tdst_new"]
    assert "apikey_old" in path.read_text()
    assert json.loads(path.read_text())["version"] == 1


def test_a_missing_or_foreign_baseline_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        read_baseline(tmp_path / "none.json")
    (tmp_path / "other.json").write_text('{"version": 1, "results": []}')
    with pytest.raises(UsageError, match="not an org check baseline"):
        read_baseline(tmp_path / "other.json")


def test_the_severity_threshold_decides_the_exit_code() -> None:
    run = messy_run(only=["ORG-INV-001"])  # a low finding
    assert run.exit_code == 0
    assert messy_run(only=["ORG-INV-001"], threshold=Severity.LOW).exit_code == 1
    assert messy_run(only=["ORG-CC-001"], threshold=Severity.CRITICAL).exit_code == 1


def test_an_unknown_check_id_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown check"):
        messy_run(only=["ORG-KEY-999"])


def test_suppressions_load_from_toml_and_show_as_tables(tmp_path: Path) -> None:
    from claudesec.config import flatten

    config = tmp_path / "claudesec.toml"
    config.write_text(
        '[[org.suppressions]]\ncheck = "ORG-KEY-002"\nresource = "apikey_old"\n'
        'reason = "legacy"\nexpires = "2027-01-31"\n'
    )
    org = load_config(config).config.org
    assert org.suppressions == (
        OrgSuppressionConfig("ORG-KEY-002", "apikey_old", "legacy", "2027-01-31"),
    )
    shown = dict((key, value) for key, value, _ in flatten(load_config(config).config))
    assert shown["org.suppressions"] == [
        {
            "check": "ORG-KEY-002",
            "resource": "apikey_old",
            "reason": "legacy",
            "expires": "2027-01-31",
        }
    ]


def test_a_resource_failing_one_check_for_two_reasons_gets_two_ids() -> None:
    from claudesec.org.catalogue import CHECKS_BY_ID
    from claudesec.org.check import _evaluate
    from claudesec.org.rules import CheckContext, Hit

    check = CHECKS_BY_ID["ORG-FED-001"]
    hits = (Hit("fdrl_x", "reason one"), Hit("fdrl_x", "reason two"), Hit("fdrl_y", "one"))
    ctx = CheckContext(config=SETTINGS, now=NOW, federation_findings=hits)
    outcome = _evaluate(check, samples.messy(NOW), ctx)
    ids = [f.fingerprint for f in outcome.findings]
    assert len(ids) == len(set(ids)) == 3

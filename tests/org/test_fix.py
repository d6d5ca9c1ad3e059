"""``org check --fix``: what it plans, what it refuses, and the apply path against the
emulator (API keys are served on main; invites and spend limits are not yet, so those writes
fail for real and the run is partial: exit 4)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from claudesec.audit.store import AuditStore
from claudesec.config import AuditConfig, OrgSuppressionConfig
from claudesec.emulator import Emulator, IssuedKey
from claudesec.errors import ExitCode
from claudesec.org import samples
from claudesec.org.check import run_checks
from claudesec.org.fix import AdminOrgWriter, FixAction, StoreRecorder, apply_fixes, plan_fixes
from claudesec.org.model import OrgInventory
from tests.fixtures.emulator import http_request
from tests.org.helpers import NOW, SETTINGS, messy_run, with_kind


def _by_kind(actions: tuple[FixAction, ...]) -> dict[str, list[FixAction]]:
    found: dict[str, list[FixAction]] = {}
    for action in actions:
        found.setdefault(action.kind, []).append(action)
    return found


def test_the_plan_fixes_unused_unmanaged_keys_spend_limits_and_stale_invites() -> None:
    run = messy_run()
    plan = plan_fixes(run, samples.messy(NOW), SETTINGS, key_markings=samples.MESSY_MARKINGS)
    todo = _by_kind(plan.to_apply)
    assert [a.target for a in todo["deactivate_key"]] == ["apikey_unused"]
    assert [a.target for a in todo["set_spend_limit"]] == ["wrkspc_prod"]
    assert dict(todo["set_spend_limit"][0].params) == {"amount": "50000", "period": "monthly"}
    assert [a.target for a in todo["delete_invite"]] == ["invite_stale"]


def test_a_key_claudesec_rotates_is_never_deactivated_by_fix() -> None:
    for marking in ("managed", "spare", "retiring", "orphaned"):
        markings = {**samples.MESSY_MARKINGS, "apikey_unused": marking}
        run = messy_run(key_markings=markings)
        plan = plan_fixes(run, samples.messy(NOW), SETTINGS, key_markings=markings)
        [action] = [a for a in plan.actions if a.kind == "deactivate_key"]
        assert action.skipped and "claudesec keys rotate" in action.skipped
        assert action not in plan.to_apply


def test_no_key_is_deactivated_without_the_key_store() -> None:
    run = messy_run(key_markings=None)
    plan = plan_fixes(run, samples.messy(NOW), SETTINGS, key_markings=None)
    [action] = [a for a in plan.actions if a.kind == "deactivate_key"]
    assert "key store was not read" in action.skipped


def test_a_key_seen_in_use_inside_the_window_is_never_deactivated() -> None:
    inventory = samples.messy(NOW)
    used = {**(inventory.key_last_used or {}), "apikey_unused": NOW - timedelta(days=1)}
    fresh = replace(inventory, key_last_used=used)
    # Even against a run made before the key was seen (a stale finding), the plan re-checks.
    plan = plan_fixes(messy_run(), fresh, SETTINGS, key_markings=samples.MESSY_MARKINGS)
    assert not [a for a in plan.actions if a.kind == "deactivate_key"]
    short = replace(inventory, usage_window_days=7)
    plan = plan_fixes(messy_run(), short, SETTINGS, key_markings=samples.MESSY_MARKINGS)
    assert not [a for a in plan.actions if a.kind == "deactivate_key"]


def test_suppressed_findings_are_not_fixed_and_no_amount_means_no_spend_limit() -> None:
    config = replace(
        SETTINGS,
        workspace_spend_limit="",
        suppressions=(OrgSuppressionConfig(check="ORG-INV-001", reason="hiring round"),),
    )
    run = messy_run(config=config)
    plan = plan_fixes(run, samples.messy(NOW), config, key_markings=samples.MESSY_MARKINGS)
    kinds = _by_kind(plan.actions)
    assert "delete_invite" not in kinds
    assert "org.workspace_spend_limit is empty" in kinds["set_spend_limit"][0].skipped


def _admin_json(emulator: Emulator, admin: IssuedKey, path: str) -> Any:
    answer = http_request(emulator, "GET", path, api_key=admin.secret)
    assert answer.status == 200, answer.body
    return answer.json()


def _emulated_inventory(emulator: Emulator, admin: IssuedKey, now: datetime) -> OrgInventory:
    """The messy sample with its api_keys replaced by the emulator's own listing."""
    keys = _admin_json(emulator, admin, "/v1/organizations/api_keys?limit=1000")["data"]
    inventory = with_kind(samples.messy(now), "api_keys", keys)
    return replace(inventory, key_last_used={}, usage_window_days=90)


def _events(audit: AuditConfig) -> list[tuple[str, dict[str, Any]]]:
    with AuditStore.from_config(audit, readonly=True) as store:
        head = store.head().seq
        stored = [store.get(seq) for seq in range(1, head + 1)]
    return [
        (s.event.reason, dict(s.event.extra)) for s in stored if s and s.event.type == "org_fix"
    ]


def test_apply_deactivates_the_unused_key_on_the_emulator_and_audits_every_change(
    emulator: Emulator, emulator_admin_key: IssuedKey
) -> None:
    now = datetime.now(UTC)
    dormant = emulator.state.add_key("api", name="dormant", created_at=now - timedelta(days=100))
    in_use = emulator.state.add_key("api", name="busy", created_at=now - timedelta(days=100))
    inventory = _emulated_inventory(emulator, emulator_admin_key, now)
    inventory = replace(inventory, key_last_used={in_use.id: now - timedelta(hours=1)})
    run = run_checks(inventory, SETTINGS, now=now, key_markings={})
    plan = plan_fixes(run, inventory, SETTINGS, key_markings={})
    targets = {a.target for a in plan.to_apply if a.kind == "deactivate_key"}
    assert dormant.id in targets and in_use.id not in targets

    writer = AdminOrgWriter(emulator.base_url, emulator_admin_key.secret, max_retries=0)
    audit = AuditConfig()
    recorder = StoreRecorder(audit)
    try:
        report = apply_fixes(plan, writer, recorder)
    finally:
        recorder.close()

    assert emulator.state.get_key(dormant.id).status == "inactive"
    assert emulator.state.get_key(in_use.id).status == "active"
    # The emulator on this branch serves no invites or spend limits: those writes fail.
    failed = {r.action.kind for r in report.failed}
    assert failed == {"set_spend_limit", "delete_invite"}
    assert report.exit_code == ExitCode.PARTIAL
    events = _events(audit)
    steps = [(step, fields["target"]) for step, fields in events]
    assert ("planned", dormant.id) in steps and ("applied", dormant.id) in steps
    assert ("failed", "invite_stale") in steps
    assert len([s for s, _ in steps if s == "planned"]) == len(plan.to_apply)
    assert not any(emulator_admin_key.secret in str(fields) for _, fields in events)


def test_all_writes_failing_is_an_external_failure(
    emulator: Emulator, emulator_admin_key: IssuedKey
) -> None:
    run = messy_run(key_markings=None)  # no key action: only the writes the emulator lacks
    plan = plan_fixes(run, samples.messy(NOW), SETTINGS, key_markings=None)
    writer = AdminOrgWriter(emulator.base_url, emulator_admin_key.secret, max_retries=0)
    recorder = StoreRecorder(AuditConfig())
    try:
        report = apply_fixes(plan, writer, recorder)
    finally:
        recorder.close()
    assert report.results and report.exit_code == ExitCode.EXTERNAL

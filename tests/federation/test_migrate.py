"""``federation migrate``: static-key callers from the audit log matched to the Admin API's keys,
a proposed rule per workload, and retirement with rotation's overlap safety.

Real parts: the emulator's Admin API (keys, usage report, status changes) through claudesec's
AdminClient, and a real audit store. Call records are written with the times they describe
(weeks of history cannot be made any other way without sleeping); one test makes them with
the audited client itself, so the hint format the log uses is proven to match Anthropic's."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from claudesec.anthropic_admin import AdminClient
from claudesec.audit.events import AuditEvent
from claudesec.audit.store import AuditStore
from claudesec.emulator import Emulator, IssuedKey
from claudesec.federation.migrate import AuditEvidence, RetirePolicy, report, retire
from claudesec.keys.events import MemorySink
from claudesec.redact import redact
from tests.fixtures.emulator import MODEL
from tests.guard.test_pipeline import audit_config, open_store

NOW = datetime.now(UTC)
FED = {
    "kind": "federation",
    "issuer": "https://token.actions.githubusercontent.com",
    "subject": "repo:acme/api:environment:production",
    "rule_id": "fdrl_api",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    with open_store(tmp_path / "audit.db") as opened:
        yield opened


@pytest.fixture
def admin(emulator: Emulator, emulator_admin_key: IssuedKey) -> AdminClient:
    return AdminClient(emulator.base_url, emulator_admin_key.secret, max_retries=0)


def call(store: AuditStore, user: str, days_ago: float, upstream: dict[str, str]) -> None:
    moment = NOW - timedelta(days=days_ago)
    store.append(
        AuditEvent(
            type="call",
            time_ns=int(moment.timestamp() * 1e9),
            user=user,
            decision="allow",
            upstream=upstream,
        )
    )


def static(key: IssuedKey) -> dict[str, str]:
    return {"kind": "api_key", "key_hint": redact(key.secret)}


def evidence(store: AuditStore) -> AuditEvidence:
    with store.snapshot() as conn:
        return AuditEvidence.read(conn)


class Org:
    """moved: its workload went to federation 10 days ago; busy: still used yesterday;
    idle: never seen in the log; expiring: has an expires_at."""

    def __init__(self, emulator: Emulator, store: AuditStore) -> None:
        state = emulator.state
        self.moved = state.add_key("api", name="API deploy (CI)")
        self.busy = state.add_key("api", name="web")
        self.idle = state.add_key("api", name="forgotten")
        self.expiring = state.add_key("api", name="temp", expires_at=state.now() + timedelta(30))
        call(store, "ci-bot", 30, static(self.moved))
        call(store, "ci-bot", 12, static(self.moved))
        for days in (10, 5, 1):
            call(store, "ci-bot", days, FED)
        call(store, "web-app", 20, static(self.busy))
        call(store, "web-app", 1, static(self.busy))


@pytest.fixture
def org(emulator: Emulator, store: AuditStore) -> Org:
    return Org(emulator, store)


def test_report_names_static_callers_non_expiring_keys_and_proposes_rules(
    org: Org, store: AuditStore, admin: AdminClient
) -> None:
    found = report(evidence(store), admin.list_keys())
    by_id = {s.key_id: s for s in found.static}
    assert set(by_id) == {org.moved.id, org.busy.id}
    assert by_id[org.busy.id].users == ("web-app",)
    assert by_id[org.moved.id].calls == 2
    assert found.static[0].key_id == org.busy.id  # most recent use first
    never = {k.id for k in found.never_expiring}
    assert {org.moved.id, org.busy.id, org.idle.id} <= never
    assert org.expiring.id not in never
    [workload] = found.federated
    assert (workload.rule_id, workload.users) == ("fdrl_api", ("ci-bot",))
    assert int(found.exit_code) == 1

    rules = tomllib.loads(found.proposals)["federation"]["rules"]
    names = {r["name"] for r in rules}
    assert names == {"api-deploy-ci", "web"}
    for rule in rules:
        assert set(rule) == {
            "name",
            "issuer",
            "service_account",
            "workspace",
            "repository",
            "ref",
            "environment",
        }
    assert "fill in" in found.proposals
    assert "never expires" in found.proposals


def test_retire_dry_run_then_yes_deactivates_only_the_moved_workloads_key(
    org: Org, store: AuditStore, admin: AdminClient, emulator: Emulator
) -> None:
    sink = MemorySink()
    ids = [org.moved.id, org.busy.id, org.idle.id]
    dry = retire(
        ids, evidence=evidence(store), admin=admin, sink=sink, policy=RetirePolicy(), now=NOW
    )
    actions = {r.key_id: r.action for r in dry}
    assert actions == {
        org.moved.id: "would_deactivate",
        org.busy.id: "kept",
        org.idle.id: "kept",
    }
    assert "within the last 7 day(s)" in next(r.reason for r in dry if r.key_id == org.busy.id)
    assert "never saw it used" in next(r.reason for r in dry if r.key_id == org.idle.id)
    assert emulator.state.get_key(org.moved.id).status == "active"
    assert sink.events == []

    done = retire(
        ids,
        evidence=evidence(store),
        admin=admin,
        sink=sink,
        policy=RetirePolicy(act=True),
        now=NOW,
    )
    assert {r.key_id: r.action for r in done}[org.moved.id] == "deactivated"
    state = emulator.state
    assert state.get_key(org.moved.id).status == "inactive"
    assert state.get_key(org.busy.id).status == "active"
    assert state.get_key(org.idle.id).status == "active"
    [(kind, started), (_, fields)] = sink.events
    assert (kind, started["step"], started["outcome"]) == (
        "key_rotation",
        "federation_retire",
        "started",
    )
    assert (fields["key_id"], fields["outcome"], fields["verified"]) == (org.moved.id, "ok", True)
    # Idempotent: a second run finds it inactive and changes nothing.
    again = retire(
        [org.moved.id],
        evidence=evidence(store),
        admin=admin,
        sink=sink,
        policy=RetirePolicy(act=True),
        now=NOW,
    )
    assert again[0].action == "already_inactive"
    assert len(sink.events) == 2


def test_retire_keeps_a_key_federated_for_less_than_the_window(
    org: Org, store: AuditStore, admin: AdminClient
) -> None:
    [result] = retire(
        [org.moved.id],
        evidence=evidence(store),
        admin=admin,
        sink=MemorySink(),
        policy=RetirePolicy(min_federated_days=11, act=True),
        now=NOW,
    )
    # The last static use (12 days ago) is outside an 11-day window, but federation only
    # started 10 days ago.
    assert result.action == "kept"
    assert "only since" in result.reason


def test_retire_keeps_a_key_the_usage_report_shows_used_outside_claudesec(
    org: Org, store: AuditStore, admin: AdminClient, emulator: Emulator
) -> None:
    """The log says the workload moved, but something still calls with the key directly
    (never through claudesec): Anthropic's usage report shows it, and the key stays."""
    import anthropic

    with anthropic.Anthropic(
        api_key=org.moved.secret, base_url=emulator.base_url, max_retries=0
    ) as direct:
        direct.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    [result] = retire(
        [org.moved.id],
        evidence=evidence(store),
        admin=admin,
        sink=MemorySink(),
        policy=RetirePolicy(act=True),
        now=NOW,
    )
    assert result.action == "kept"
    assert "usage report" in result.reason
    assert emulator.state.get_key(org.moved.id).status == "active"


def test_a_call_through_the_audited_client_is_matched_to_its_admin_api_key(
    emulator: Emulator, store: AuditStore, admin: AdminClient
) -> None:
    from claudesec import AuditedAnthropic

    key = emulator.state.add_key("api", name="notebook")
    with AuditedAnthropic(
        user="alice",
        api_key=key.secret,
        base_url=emulator.base_url,
        claudesec_config=audit_config(),
        store=store,
        max_retries=0,
    ) as client:
        client.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    found = report(evidence(store), admin.list_keys())
    [caller] = found.static
    assert (caller.key_id, caller.key_name, caller.users) == (key.id, "notebook", ("alice",))
    assert key.secret not in found.proposals


def test_the_migrate_command_reports_then_retires_with_yes(
    emulator: Emulator,
    emulator_admin_key: IssuedKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command as the federation group will register it (one line in cli/federation)."""
    import json

    import typer
    from typer.testing import CliRunner

    from claudesec.cli.federation_migrate import register
    from claudesec.config import load_config
    from claudesec.console import reset_console

    app = typer.Typer()

    @app.callback()
    def group() -> None:
        """federation"""

    register(app)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "claudesec.toml").write_text(
        f'[anthropic]\nbase_url = "{emulator.base_url}"\n\n'
        f'[audit]\nstore_path = "{tmp_path / "audit.db"}"\n'
    )
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", emulator_admin_key.secret)
    audit = load_config().config.audit
    with AuditStore.from_config(audit) as made:
        org = Org(emulator, made)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        reset_console()
        # standalone_mode=False: the command's return value is its exit code, as the
        # claudesec entry point uses it.
        result = runner.invoke(app, ["migrate", *args], standalone_mode=False)
        reset_console()
        assert result.exception is None, result.output
        return int(result.return_value), result.stdout

    code, out = run("--json")
    assert code == 1, out
    assert {s["key_id"] for s in json.loads(out)["static"]} == {org.moved.id, org.busy.id}

    code, out = run("--retire", org.moved.id, "--skip-managed-check")
    assert code == 0, out
    assert "would_deactivate" in out
    assert emulator.state.get_key(org.moved.id).status == "active"

    code, out = run("--retire", org.moved.id, "--skip-managed-check", "--yes", "--json")
    assert code == 0, out
    assert json.loads(out)["retirements"][0]["action"] == "deactivated"
    assert emulator.state.get_key(org.moved.id).status == "inactive"
    code, out = run("--retire", org.busy.id, "--skip-managed-check", "--yes")
    assert code == 1, out
    assert emulator.state.get_key(org.busy.id).status == "active"
    with AuditStore.from_config(audit, readonly=True) as log:
        retired = [
            e
            for e in (log.get(seq) for seq in range(1, log.head().seq + 1))
            if e is not None and e.event.reason == "federation_retire"
        ]
    assert [(r.event.extra["key_id"], r.event.extra["outcome"]) for r in retired] == [
        (org.moved.id, "started"),
        (org.moved.id, "ok"),
    ]

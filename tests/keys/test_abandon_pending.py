"""A pending rotation whose spare can never work: detected, named, and safely abandoned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from claudesec.emulator import IssuedKey
from claudesec.errors import ExitCode
from claudesec.keys.model import Spare
from claudesec.redact import redact
from tests.fixtures.cli import RunCli
from tests.keys.conftest import Rig

FIX = "claudesec keys rotate app --abandon-pending"


def _current_version(rig: Rig) -> str:
    return next(v for v, s in rig.stages().items() if "AWSCURRENT" in s)


def _has_pending(rig: Rig) -> bool:
    return any("AWSPENDING" in s for s in rig.stages().values())


def _stuck_on_archived_spare(rig: Rig) -> tuple[IssuedKey, IssuedKey, IssuedKey]:
    old = rig.managed("app")
    bad, good = rig.spares(2)
    rig.emulator.state.set_key_status(bad.id, "archived")  # archived in the Console
    report = rig.manager.rotate(["app"], force=True)
    (result,) = report.results
    assert result.outcome == "failed"
    assert report.exit_code == ExitCode.FOUND
    assert "archived" in result.message and FIX in result.message
    assert _has_pending(rig)
    return old, bad, good


def test_archived_spare_is_reported_with_the_fixing_command_and_abandon_discards_it(
    rig: Rig,
) -> None:
    old, bad, good = _stuck_on_archived_spare(rig)
    current_version = _current_version(rig)
    # Rerunning does not help: same verdict, same command.
    (again,) = rig.manager.rotate(["app"]).results
    assert FIX in again.message

    result = rig.manager.abandon_pending("app")

    assert [(k.key_id, k.disposition) for k in result.keys] == [(bad.id, "discarded")]
    assert "archived" in result.keys[0].reason
    assert not _has_pending(rig)
    assert _current_version(rig) == current_version
    assert rig.current_key() == old.secret
    assert rig.emulator.state.get_key(old.id).status == "active"
    doc = rig.manager.pool.read()
    assert [(s.key_id, s.claim) for s in doc.spares] == [(good.id, None)]
    assert doc.leases == {}
    events = [f for t, f in rig.sink.events if f.get("step") == "abandon_pending"]
    assert [(e["key_id"], e["disposition"]) for e in events] == [(bad.id, "discarded")]

    (rotated,) = rig.manager.rotate(["app"], force=True).results
    assert rotated.outcome == "rotated", rotated.message
    assert rig.current_key() == good.secret


def test_healthy_spare_goes_back_to_the_pool_deactivated(rig: Rig) -> None:
    old = rig.managed("app")
    spare, other = rig.spares(2)
    # testSecret cannot reach Anthropic: pending, spare already activated by setSecret.
    rig.emulator.state.inject_fault("server_error", path_prefix="/v1/models")
    (result,) = rig.manager.rotate(["app"], force=True).results
    assert result.outcome == "failed"
    assert rig.emulator.state.get_key(spare.id).status == "active"

    abandoned = rig.manager.abandon_pending("app")

    assert [(k.key_id, k.disposition) for k in abandoned.keys] == [(spare.id, "returned")]
    assert rig.emulator.state.get_key(spare.id).status == "inactive"
    assert not _has_pending(rig)
    assert rig.current_key() == old.secret
    doc = rig.manager.pool.read()
    assert [(s.key_id, s.claim) for s in doc.spares] == [(spare.id, None), (other.id, None)]
    assert all(s.key for s in doc.spares)
    # The returned spare is usable: the next rotation takes it.
    rig.manager.rotate(["app"], force=True)
    assert rig.current_key() == spare.secret


def test_key_refused_after_activation_run_after_run_is_called_stuck(rig: Rig) -> None:
    old = rig.managed("app")
    (good,) = rig.spares(1)
    # A spare whose stored key is not the key its id names (a wrong paste behind a shared
    # hint): Anthropic activates the id, but the stored key answers 401 every time.
    named = rig.new_key(status="inactive")
    wrong = rig.new_key(status="inactive")
    rig.manager.pool.update(
        lambda doc: (
            doc.replace_spare(
                named.id,
                Spare(named.id, wrong.secret, redact(wrong.secret), None, "2026-01-01T00:00:00Z"),
            ).replace_spare(good.id, None),
            None,
        )
    )
    rig.manager.pool.add(next(s for s in rig.manager.pool.read().spares if s.key_id == named.id))

    outcomes = []
    for _ in range(rig.settings.stuck_after):
        report = rig.manager.rotate(["app"], force=True)
        outcomes.append((report.results[0].message, report.exit_code))
    *early, (last_message, last_code) = outcomes
    for message, code in early:
        assert code == ExitCode.EXTERNAL and "if it persists" in message and FIX in message
    assert last_code == ExitCode.FOUND
    assert f"in {rig.settings.stuck_after} runs" in last_message and FIX in last_message
    assert rig.current_key() == old.secret

    abandoned = rig.manager.abandon_pending("app")
    assert [(k.key_id, k.disposition) for k in abandoned.keys] == [(named.id, "discarded")]
    assert "refuses" in abandoned.keys[0].reason
    # Discarded but activated by setSecret: it must not stay a live key nobody holds.
    assert rig.emulator.state.get_key(named.id).status == "inactive"
    assert rig.manager.pool.read().spares == ()


def test_spare_deleted_in_the_console_is_stuck_and_discarded(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.managed("app")
    gone, good = rig.spares(2)
    state = rig.emulator.state
    real_get = state.get_key

    def get_key(key_id: str) -> Any:
        if key_id == gone.id:
            raise KeyError(key_id)  # what the emulator does for an unknown id: 404
        return real_get(key_id)

    monkeypatch.setattr(state, "get_key", get_key)
    report = rig.manager.rotate(["app"], force=True)
    assert report.exit_code == ExitCode.FOUND
    assert "not in the organisation" in report.results[0].message
    assert FIX in report.results[0].message

    abandoned = rig.manager.abandon_pending("app")
    assert [(k.key_id, k.disposition) for k in abandoned.keys] == [(gone.id, "discarded")]
    assert [s.key_id for s in rig.manager.pool.read().spares] == [good.id]


class _DieAfterPendingDropped:
    """Kills the client right after AWS removed AWSPENDING (the reply never arrives)."""

    def __init__(self) -> None:
        self.dead = False
        self.dropping = False

    def before(self, **_: Any) -> None:
        if self.dead:
            raise RuntimeError("dead")

    def params(self, params: dict[str, Any], **_: Any) -> None:
        self.dropping = (
            params.get("VersionStage") == "AWSPENDING" and "MoveToVersionId" not in params
        )

    def after(self, **_: Any) -> None:
        if self.dropping:
            self.dead = True
            raise RuntimeError("died after dropping AWSPENDING")


def test_abandon_resumes_after_dying_between_dropping_pending_and_releasing_the_claim(
    rig: Rig,
) -> None:
    old, bad, good = _stuck_on_archived_spare(rig)
    killer = _DieAfterPendingDropped()
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=rig.endpoint,
        config=Config(retries={"total_max_attempts": 1}),
    )
    client.meta.events.register("before-call.secrets-manager", killer.before)
    client.meta.events.register(
        "before-parameter-build.secrets-manager.UpdateSecretVersionStage", killer.params
    )
    client.meta.events.register("after-call.secrets-manager.UpdateSecretVersionStage", killer.after)
    with pytest.raises(RuntimeError):
        rig.make_manager(client=client).abandon_pending("app")
    assert not _has_pending(rig)
    assert [s.key_id for s in rig.manager.pool.read().claimed_by("claudesec/app")] == [bad.id]

    rig.clock.advance(seconds=rig.settings.lease_s + 5)  # the dead run's lock runs out
    result = rig.manager.abandon_pending("app")

    assert [(k.key_id, k.disposition) for k in result.keys] == [(bad.id, "discarded")]
    assert [(s.key_id, s.claim) for s in rig.manager.pool.read().spares] == [(good.id, None)]
    assert rig.current_key() == old.secret


def test_abandon_with_nothing_pending_changes_nothing(rig: Rig) -> None:
    old = rig.managed("app")
    (spare,) = rig.spares(1)
    before = rig.stages()
    result = rig.manager.abandon_pending("app")
    assert result.nothing_pending
    assert rig.stages() == before
    assert [(s.key_id, s.claim) for s in rig.manager.pool.read().spares] == [(spare.id, None)]
    assert rig.current_key() == old.secret


def test_abandon_from_the_cli(rig: Rig, keys_config: Path, run_cli: RunCli) -> None:
    current = rig.new_key()
    assert run_cli("keys", "add", "app", input=current.secret).exit_code == 0
    bad, good = rig.new_key(), rig.new_key()
    assert run_cli("keys", "pool", "add", input=f"{bad.secret}\n{good.secret}\n").exit_code == 0
    rig.emulator.state.set_key_status(bad.id, "archived")

    stuck = run_cli("keys", "rotate", "app", "--force")
    assert stuck.exit_code == 1, stuck.output
    assert FIX in stuck.stdout

    result = run_cli("keys", "rotate", "app", "--abandon-pending")
    assert result.exit_code == 0, result.output
    assert "AWSCURRENT unchanged" in result.stdout
    assert bad.id in result.stderr and "removed from the pool" in result.stderr
    for key in (current, bad, good):
        assert key.secret not in result.output

    as_json = run_cli("keys", "rotate", "app", "--abandon-pending", "--json")
    assert json.loads(as_json.stdout)["nothing_pending"] is True
    assert run_cli("keys", "rotate", "--all", "--abandon-pending").exit_code == 2

    assert run_cli("keys", "rotate", "app", "--force").exit_code == 0
    assert rig.current_key() == good.secret

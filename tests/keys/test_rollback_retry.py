"""`keys rollback` is safe to retry: a second run, or a retry after a lost reply, never
rolls the rollback back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claudesec.emulator import IssuedKey
from claudesec.errors import ClaudesecError, ExitCode
from tests.fixtures.cli import RunCli
from tests.keys.conftest import Rig
from tests.keys.test_crash_matrix import Crash, Injector, _client


def _rotated(rig: Rig) -> tuple[IssuedKey, IssuedKey]:
    old = rig.managed("app")
    (spare,) = rig.spares(1)
    assert rig.manager.rotate(["app"], force=True).results[0].outcome == "rotated"
    return old, spare


def _version_of(rig: Rig, stage: str) -> str:
    return next(v for v, s in rig.stages().items() if stage in s)


def test_a_second_rollback_reports_success_and_moves_nothing(rig: Rig) -> None:
    old, _ = _rotated(rig)
    first = rig.manager.rollback("app")
    target = _version_of(rig, "AWSCURRENT")
    assert first.outcome == "rolled_back"
    assert f"to version {target}" in first.message

    again = rig.manager.rollback("app")

    assert again.outcome == "already_done", again
    assert target in again.message
    assert rig.current_key() == old.secret
    assert _version_of(rig, "AWSCURRENT") == target


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_rollback_retried_after_a_crash_at_the_label_move_ends_on_the_old_key(
    rig: Rig, when: str
) -> None:
    old, _ = _rotated(rig)
    target = _version_of(rig, "AWSPREVIOUS")
    probe = Injector(None, "never")
    rig.make_manager(client=_client(rig, probe)).rollback("app", to_version=target)
    # Back to the start, then crash at the AWSCURRENT move of the same rollback.
    moves = [i for i, op in enumerate(probe.calls) if op == "UpdateSecretVersionStage"]
    rig.reset()
    old, _ = _rotated(rig)
    target = _version_of(rig, "AWSPREVIOUS")
    dying = rig.make_manager(client=_client(rig, Injector(moves[0], when)))
    with pytest.raises(Crash):
        dying.rollback("app")
    rig.clock.advance(seconds=rig.settings.lease_s + 5)

    result = rig.manager.rollback("app")  # the operator retries

    assert result.outcome in ("rolled_back", "already_done"), result
    assert rig.current_key() == old.secret
    assert _version_of(rig, "AWSCURRENT") == target
    assert rig.manager.rollback("app").outcome == "already_done"
    assert rig.current_key() == old.secret


def test_rollback_to_names_a_version_and_refuses_others(rig: Rig) -> None:
    old, spare = _rotated(rig)
    current_v = _version_of(rig, "AWSCURRENT")
    assert rig.manager.rollback("app", to_version=current_v).outcome == "already_done"
    assert rig.current_key() == spare.secret
    with pytest.raises(ClaudesecError) as caught:
        rig.manager.rollback("app", to_version="not-a-version")
    assert caught.value.exit_code == ExitCode.USAGE
    # Rolling forward again is a named choice, not a toggle.
    previous_v = _version_of(rig, "AWSPREVIOUS")
    rig.manager.rollback("app")
    assert rig.current_key() == old.secret
    assert rig.manager.rollback("app", to_version=current_v).outcome == "rolled_back"
    assert rig.current_key() == spare.secret
    assert previous_v != current_v


def test_rollback_output_says_what_happened(rig: Rig, keys_config: Path, run_cli: RunCli) -> None:
    old, spare = _rotated(rig)
    target = _version_of(rig, "AWSPREVIOUS")
    result = run_cli("keys", "rollback", "app")
    assert result.exit_code == 0, result.output
    assert f"rolled back app to version {target}" in result.stdout
    assert "replaces" not in result.stdout
    assert old.id in result.stdout

    again = run_cli("keys", "rollback", "app", "--json")
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert doc["outcome"] == "already_done" and doc["key_id"] == old.id
    assert rig.current_key() == old.secret
    assert spare.secret not in again.output


def test_keys_add_retried_after_a_lost_reply_succeeds(rig: Rig) -> None:
    key = rig.new_key()
    first = rig.manager.add("app", key.secret)
    again = rig.manager.add("app", key.secret)  # the operator retries: same key, same name
    assert again.key_id == first.key_id == key.id
    other = rig.new_key()
    with pytest.raises(ClaudesecError):  # a different key under a taken name is still refused
        rig.manager.add("app", other.secret)

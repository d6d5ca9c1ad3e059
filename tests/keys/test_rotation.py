"""The rotation protocol end to end: moto + the emulator over loopback HTTP."""

from __future__ import annotations

import json

from claudesec.errors import ExitCode
from claudesec.redact import redact
from tests.keys.conftest import Rig


def test_add_stores_the_key_document_and_pool_add_deactivates_spares(rig: Rig) -> None:
    current = rig.managed("app")
    (spare,) = rig.spares(1)

    doc = json.loads(
        rig.sm.get_secret_value(SecretId="claudesec/app", VersionStage="AWSCURRENT")["SecretString"]
    )
    assert set(doc) == {"key_id", "key", "name", "workspace", "created_at"}
    assert doc["key_id"] == current.id
    assert rig.emulator.state.get_key(spare.id).status == "inactive"
    assert [s.key_id for s in rig.manager.pool.read().unclaimed()] == [spare.id]


def test_pool_add_is_idempotent(rig: Rig) -> None:
    key = rig.new_key()
    _, first = rig.manager.pool_add(key.secret)
    _, second = rig.manager.pool_add(key.secret)
    assert (first, second) == (True, False)
    assert len(rig.manager.pool.read().spares) == 1


def test_rotate_runs_the_four_steps_and_keeps_the_previous_key_active(rig: Rig) -> None:
    old = rig.managed("app")
    (spare,) = rig.spares(1)

    report = rig.manager.rotate(["app"], force=True)

    (result,) = report.results
    assert result.outcome == "rotated", result.message
    assert result.steps[:4] == ("create_secret", "set_secret", "test_secret", "finish_secret")
    assert rig.current_key() == spare.secret
    assert rig.emulator.state.get_key(spare.id).status == "active"
    assert rig.emulator.state.get_key(old.id).status == "active"  # overlap window
    stages = rig.stages()
    assert sorted(tuple(v) for v in stages.values()) == [("AWSCURRENT",), ("AWSPREVIOUS",)]
    assert report.exit_code == ExitCode.OK
    assert rig.manager.pool.read().spares == ()
    steps = rig.sink.steps()
    for step in ("create_secret", "set_secret", "test_secret", "finish_secret", "settle"):
        assert step in steps


def test_not_due_keys_are_skipped_unless_forced(rig: Rig) -> None:
    rig.managed("app")
    rig.spares(1)
    (result,) = rig.manager.rotate(["app"]).results
    assert result.outcome == "not_due"
    rig.clock.advance(days=91)
    (result,) = rig.manager.rotate(["app"]).results
    assert result.outcome == "rotated"


def test_previous_key_is_retired_in_a_later_run_after_the_overlap(rig: Rig) -> None:
    old = rig.managed("app")
    rig.spares(1)
    rig.manager.rotate(["app"], force=True)

    (result,) = rig.manager.rotate(["app"]).results
    assert result.retired == ()
    assert rig.emulator.state.get_key(old.id).status == "active"

    rig.clock.advance(hours=25)
    (result,) = rig.manager.rotate(["app"]).results
    assert result.retired == (old.id,)
    assert rig.emulator.state.get_key(old.id).status == "inactive"
    assert rig.manager.pool.read().retiring == ()
    assert "retire" in rig.sink.steps()


def test_two_rotations_inside_the_overlap_retire_both_old_keys(rig: Rig) -> None:
    first = rig.managed("app")
    second, _third = rig.spares(2)
    rig.manager.rotate(["app"], force=True)
    rig.manager.rotate(["app"], force=True)
    rig.clock.advance(hours=25)
    (result,) = rig.manager.rotate(["app"]).results
    assert sorted(result.retired) == sorted([first.id, second.id])


def test_empty_pool_on_an_overdue_key_exits_1(rig: Rig) -> None:
    rig.managed("app")
    rig.clock.advance(days=100)
    report = rig.manager.rotate(["app"])
    assert report.results[0].outcome == "pool_empty"
    assert report.exit_code == ExitCode.FOUND


def test_a_held_lease_blocks_a_second_run_until_it_expires(rig: Rig) -> None:
    rig.managed("app")
    rig.spares(1)
    assert rig.manager.pool.acquire("claudesec/app", "other-run", 600) is None

    (result,) = rig.manager.rotate(["app"], force=True).results
    assert result.outcome == "locked"

    rig.clock.advance(seconds=601)
    (result,) = rig.manager.rotate(["app"], force=True).results
    assert result.outcome == "rotated"


def test_rollback_moves_current_back_and_reactivates_a_retired_key(rig: Rig) -> None:
    old = rig.managed("app")
    (spare,) = rig.spares(1)
    rig.manager.rotate(["app"], force=True)
    rig.clock.advance(hours=25)
    rig.manager.rotate(["app"])
    assert rig.emulator.state.get_key(old.id).status == "inactive"

    result = rig.manager.rollback("app")

    assert result.key_id == old.id
    assert rig.current_key() == old.secret
    assert rig.emulator.state.get_key(old.id).status == "active"
    retiring = rig.manager.pool.read().retiring
    assert [r.key_id for r in retiring] == [spare.id]


def test_revoke_deactivates_at_once_and_promotes_a_spare(rig: Rig) -> None:
    old = rig.managed("app")
    (spare,) = rig.spares(1)

    result = rig.manager.revoke("app")

    assert result.rotated
    assert rig.emulator.state.get_key(old.id).status == "inactive"
    assert rig.current_key() == spare.secret
    assert "consumers must re-read" in result.message
    assert old.secret not in result.message and redact(old.secret) in result.message

"""A revoked key is presumed compromised: no path may put it back in service."""

from __future__ import annotations

import json

import pytest

from claudesec.errors import ExitCode
from claudesec.keys.rotation import KeyRevoked
from claudesec.redact import redact
from tests.keys.conftest import Rig


def _pool_doc(rig: Rig) -> dict[str, object]:
    value = rig.sm.get_secret_value(SecretId="claudesec/pool", VersionStage="AWSCURRENT")
    doc: dict[str, object] = json.loads(value["SecretString"])
    return doc


def test_revoke_records_the_key_durably_in_the_pool_secret(rig: Rig) -> None:
    old = rig.managed("app")
    rig.spares(1)
    rig.manager.revoke("app")

    revoked = _pool_doc(rig)["revoked"]
    assert isinstance(revoked, dict)
    assert set(revoked) == {old.id}
    assert revoked[old.id]["secret"] == "claudesec/app"
    assert revoked[old.id]["hint"] == redact(old.secret)
    assert old.secret not in json.dumps(revoked)
    assert "revoke_marked" in rig.sink.steps()


def test_rollback_after_revoke_refuses_to_bring_the_revoked_key_back(rig: Rig) -> None:
    old = rig.managed("app")
    (spare,) = rig.spares(1)
    rig.manager.revoke("app")
    stages_before = rig.stages()

    with pytest.raises(KeyRevoked) as caught:
        rig.make_manager().rollback("app")

    message = caught.value.user_message()
    assert caught.value.exit_code == ExitCode.USAGE
    assert "\n" not in message
    assert old.id in message and redact(old.secret) in message
    assert old.secret not in message
    assert rig.stages() == stages_before
    assert rig.current_key() == spare.secret
    assert rig.emulator.state.get_key(old.id).status == "inactive"
    assert rig.manager.pool.read().leases == {}  # the refused rollback released its lock


def test_rollback_refuses_even_if_someone_reactivated_the_revoked_key_in_the_console(
    rig: Rig,
) -> None:
    old = rig.managed("app")
    rig.spares(1)
    rig.manager.revoke("app")
    rig.emulator.state.set_key_status(old.id, "active")

    with pytest.raises(KeyRevoked):
        rig.manager.rollback("app")
    assert rig.current_key() != old.secret


def test_pool_add_and_add_refuse_a_revoked_key(rig: Rig) -> None:
    old = rig.managed("app")
    rig.spares(1)
    rig.manager.revoke("app")
    rig.emulator.state.set_key_status(old.id, "active")  # brought back in the Console

    with pytest.raises(KeyRevoked, match=old.id):
        rig.manager.pool_add(old.secret)
    with pytest.raises(KeyRevoked, match=old.id):
        rig.manager.add("other", old.secret)
    assert old.id not in {s.key_id for s in rig.manager.pool.read().spares}


def test_a_pending_key_that_was_revoked_is_never_activated(rig: Rig) -> None:
    rig.managed("app")
    (spare,) = rig.spares(1)
    # setSecret fails once: the rotation is left pending on the (inactive) spare.
    rig.emulator.state.inject_fault(
        "server_error", path_prefix=f"/v1/organizations/api_keys/{spare.id}"
    )
    (first,) = rig.manager.rotate(["app"], force=True).results
    assert first.outcome == "failed"
    rig.manager.pool.mark_revoked(spare.id, redact(spare.secret), "claudesec/elsewhere")

    report = rig.manager.rotate(["app"])

    (result,) = report.results
    assert result.outcome == "failed"
    assert report.exit_code == ExitCode.USAGE
    assert spare.id in result.message and redact(spare.secret) in result.message
    assert "claudesec keys rotate app --abandon-pending" in result.message
    assert rig.emulator.state.get_key(spare.id).status == "inactive"


def test_revoke_with_an_empty_pool_rotates_on_the_next_plain_run(rig: Rig) -> None:
    old = rig.managed("app")
    result = rig.manager.revoke("app")
    assert result.outcome == "pool_empty"
    assert rig.current_key() == old.secret  # nothing to rotate to yet

    (spare,) = rig.spares(1)
    # Not forced and not due by age: the revoked key must still be replaced at once.
    (again,) = rig.manager.rotate(["app"]).results
    assert again.outcome == "rotated", again.message
    assert rig.current_key() == spare.secret

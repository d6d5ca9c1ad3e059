"""`keys pool add` deactivates the keys it loads: it must refuse a key that is in use."""

from __future__ import annotations

from pathlib import Path

import pytest

from claudesec.errors import ClaudesecError, ExitCode
from tests.fixtures.cli import RunCli
from tests.keys.conftest import Rig


def _refused(rig: Rig, key: str, *words: str) -> None:
    with pytest.raises(ClaudesecError) as caught:
        rig.manager.pool_add(key)
    assert caught.value.exit_code == ExitCode.USAGE
    message = caught.value.user_message()
    for word in words:
        assert word in message, message
    assert key not in message


def test_the_current_key_of_a_managed_secret_is_refused(rig: Rig) -> None:
    current = rig.managed("app")
    _refused(rig, current.secret, "AWSCURRENT of claudesec/app", "--force")
    assert rig.emulator.state.get_key(current.id).status == "active"
    assert current.id not in {s.key_id for s in rig.manager.pool.read().spares}


def test_the_previous_key_in_its_overlap_window_is_refused(rig: Rig) -> None:
    old = rig.managed("app")
    rig.spares(1)
    rig.manager.rotate(["app"], force=True)
    _refused(rig, old.secret, "AWSPREVIOUS of claudesec/app")
    assert rig.emulator.state.get_key(old.id).status == "active"


def test_a_key_the_usage_report_shows_in_use_is_refused_unless_forced(rig: Rig) -> None:
    import anthropic

    used = rig.new_key()  # a key some application uses, not managed by claudesec
    client = anthropic.Anthropic(api_key=used.secret, base_url=rig.emulator.base_url, max_retries=0)
    with client:
        client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=16,
            messages=[{"role": "user", "content": "hello"}],
        )
    _refused(rig, used.secret, "usage report")
    assert rig.emulator.state.get_key(used.id).status == "active"

    spare, added = rig.manager.pool_add(used.secret, force=True)
    assert added and spare.key_id == used.id
    assert rig.emulator.state.get_key(used.id).status == "inactive"


def test_a_key_the_audit_log_shows_in_service_is_refused_from_the_cli(
    rig: Rig, keys_config: Path, run_cli: RunCli
) -> None:
    key = rig.new_key()
    assert run_cli("keys", "add", "app", input=key.secret).exit_code == 0
    # The secret is gone from this store (another region, a manual delete): only the audit
    # log still knows that the key was put in service.
    rig.sm.delete_secret(SecretId="claudesec/app", ForceDeleteWithoutRecovery=True)

    result = run_cli("keys", "pool", "add", input=key.secret + "\n")

    assert result.exit_code == 2, result.output
    assert "audit log" in result.stderr and "add" in result.stderr
    assert rig.emulator.state.get_key(key.id).status == "active"
    assert key.secret not in result.output

    forced = run_cli("keys", "pool", "add", "--force", input=key.secret + "\n")
    assert forced.exit_code == 0, forced.output
    assert rig.emulator.state.get_key(key.id).status == "inactive"


def test_a_fresh_spare_is_still_accepted(rig: Rig) -> None:
    fresh = rig.new_key()
    spare, added = rig.manager.pool_add(fresh.secret)
    assert added and rig.emulator.state.get_key(fresh.id).status == "inactive"
    assert spare.key_id == fresh.id

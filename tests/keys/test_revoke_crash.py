"""An interrupted ``keys revoke`` must never leave the leaked key working.

Crash injection at every boto3 call of a revoke (botocore ``before-call``: the request never
left; ``after-call``: AWS applied it, the process died), at every Anthropic call (the
emulator's fault knobs) and with the Admin API gone altogether. Then whichever command runs
next (``keys revoke`` again, a plain ``keys rotate``, ``keys status``) must finish the revoke
at once, ignoring the overlap window: the revoked key answers 401, proved through the
emulator. A rerun of revoke must never revoke the key that replaced the revoked one.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from claudesec.anthropic_admin import AdminClient, probe_key
from claudesec.emulator import IssuedKey
from claudesec.errors import ClaudesecError, ExitCode
from claudesec.keys.rotation import KeyManager
from claudesec.keys.status import status
from tests.keys.conftest import Rig
from tests.keys.test_crash_matrix import Crash, Injector, _client

NEXT = ("revoke", "rotate", "status")


def _setup(rig: Rig) -> tuple[IssuedKey, list[IssuedKey]]:
    rig.reset()
    old = rig.managed("app")
    return old, rig.spares(2)


def _answers(rig: Rig, key: str) -> str:
    return probe_key(rig.emulator.base_url, key, timeout_s=5).outcome


def _marked(rig: Rig, old: IssuedKey) -> bool:
    return old.id in rig.manager.pool.read().revoked


def _run_next(rig: Rig, command: str) -> Any:
    rig.clock.advance(seconds=rig.settings.lease_s + 5)  # a dead run's lock has run out
    manager = rig.manager
    if command == "revoke":
        return manager.revoke("app")
    if command == "rotate":
        return manager.rotate(["app"])  # a plain cron run: not forced, nothing due by age
    return status(manager)


def _check_after(
    rig: Rig, old: IssuedKey, spares: list[IssuedKey], command: str, label: str
) -> Any:
    marked_before = _marked(rig, old)
    working_before = _answers(rig, old.secret) == "valid"
    outcome = _run_next(rig, command)
    if marked_before or command == "revoke":
        assert _answers(rig, old.secret) == "rejected", f"{label} then {command}: key works"
        assert rig.emulator.state.get_key(old.id).status == "inactive", label
    else:
        # Nothing was recorded: the revoke never started, and nothing claims it did.
        assert _answers(rig, old.secret) == "valid", label
    current = rig.current_key()
    if current != old.secret:
        # Whatever replaced the revoked key is in service, not revoked by mistake.
        assert current in {s.secret for s in spares}, label
        assert _answers(rig, current) == "valid", f"{label} then {command}: new key dead"
        new = next(s for s in spares if s.secret == current)
        assert new.id not in rig.manager.pool.read().revoked, label
    if command == "status" and marked_before and working_before:
        # The leaked key was live until this status run: the monitor must hear of it.
        report = outcome
        assert report.exit_code == ExitCode.FOUND, (label, report.warnings)
        assert any(old.id in w for w in report.alerts), (label, report.warnings)
    return outcome


def _reference_calls(rig: Rig) -> tuple[list[str], int]:
    """The boto3 calls of one revoke, and how many of them come before the revoke is
    recorded as proved (the rest are the rotation, whose crashes test_crash_matrix covers)."""
    old, _ = _setup(rig)
    injector = Injector(None, "never")
    client = _client(rig, injector)
    statuses: list[str] = []

    def note(**_: Any) -> None:
        statuses.append(rig.emulator.state.get_key(old.id).status)

    client.meta.events.register("before-call.secrets-manager", note)
    result = rig.make_manager(client=client).revoke("app")
    assert result.outcome == "rotated"
    dead_from = statuses.index("inactive")
    return injector.calls, dead_from + 4  # + the compare-and-swap that records the proof


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_revoke_killed_at_any_aws_call_is_finished_by_the_next_command(
    rig: Rig, when: str
) -> None:
    calls, revoke_part = _reference_calls(rig)
    assert "PutSecretValue" in calls[:revoke_part]
    checked = set()
    for index, op in enumerate(calls):
        # Every next command after each crash of the revoke itself; during the rotation
        # that follows (the key is already dead) one command per crash, in turn.
        commands = NEXT if index < revoke_part else (NEXT[index % len(NEXT)],)
        for command in commands:
            label = f"{when} call {index} ({op})"
            old, spares = _setup(rig)
            manager = rig.make_manager(client=_client(rig, Injector(index, when)))
            with pytest.raises(Crash):
                manager.revoke("app")
            _check_after(rig, old, spares, command, label)
            checked.add((index, command))
    assert len(checked) >= revoke_part * len(NEXT)


def _admin_paths(rig: Rig) -> list[tuple[str, str]]:
    """(method, path) of every Anthropic call one revoke makes, key ids as placeholders."""
    old, spares = _setup(rig)
    rig.emulator.state.clear_requests()
    rig.manager.revoke("app")
    names = {old.id: "{old}", spares[0].id: "{spare0}", spares[1].id: "{spare1}"}
    seen = []
    for record in rig.emulator.state.requests():
        path = record.path
        for key_id, placeholder in names.items():
            path = path.replace(key_id, placeholder)
        seen.append((record.method, path))
    return list(dict.fromkeys(seen))


@pytest.mark.parametrize("fault", ["drop_connection", "server_error"])
def test_a_revoke_failing_at_any_anthropic_call_is_finished_by_the_next_command(
    rig: Rig, fault: str
) -> None:
    paths = _admin_paths(rig)
    assert ("POST", "/v1/organizations/api_keys/{old}") in paths
    assert ("GET", "/v1/models") in paths
    for method, template in paths:
        for command in NEXT:
            old, spares = _setup(rig)
            path = template.format(old=old.id, spare0=spares[0].id, spare1=spares[1].id)
            # Every matching call fails for this run (a retry would meet the same fault).
            rig.emulator.state.inject_fault(fault, count=5, path_prefix=path)
            label = f"{fault} at {method} {path}"
            try:
                result = rig.manager.revoke("app")
                failed = result.outcome == "failed"
            except ClaudesecError as exc:
                failed = True
                assert exc.exit_code == ExitCode.EXTERNAL, label
            rig.emulator.state.clear_faults()
            assert failed or _answers(rig, old.secret) == "rejected", label
            _check_after(rig, old, spares, command, label)


def _dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _without_admin_api(rig: Rig) -> KeyManager:
    dead = AdminClient(_dead_url(), rig.admin_key.secret, max_retries=0, sleep=lambda _: None)
    return rig.make_manager(admin=dead)


@pytest.mark.parametrize("command", NEXT)
def test_a_revoke_with_the_admin_api_down_is_finished_by_the_next_command(
    rig: Rig, command: str
) -> None:
    old, spares = _setup(rig)
    with pytest.raises(ClaudesecError) as caught:
        _without_admin_api(rig).revoke("app")
    assert caught.value.exit_code == ExitCode.EXTERNAL
    assert _marked(rig, old)
    assert _answers(rig, old.secret) == "valid"  # the leaked key still works: the bug's window

    _check_after(rig, old, spares, command, "admin API down")


def test_rotate_after_an_unfinished_revoke_does_not_wait_for_the_overlap_window(
    rig: Rig,
) -> None:
    old, spares = _setup(rig)
    with pytest.raises(ClaudesecError):
        _without_admin_api(rig).revoke("app")

    (result,) = rig.manager.rotate(["app"]).results

    assert result.outcome == "rotated", result
    assert rig.current_key() == spares[0].secret
    assert _answers(rig, old.secret) == "rejected"
    assert old.id not in {r.key_id for r in rig.manager.pool.read().retiring}


def test_status_names_a_revoked_key_someone_re_enabled_in_the_console(rig: Rig) -> None:
    old, _ = _setup(rig)
    rig.manager.revoke("app")
    rig.emulator.state.set_key_status(old.id, "active")

    report = status(rig.manager)

    assert report.exit_code == ExitCode.FOUND
    assert any(old.id in w and "re-enabled" in w for w in report.warnings), report.warnings
    assert _answers(rig, old.secret) == "rejected"  # and it is dead again


def test_a_revoke_rerun_after_the_rotation_never_revokes_the_new_key(rig: Rig) -> None:
    old, spares = _setup(rig)
    first = rig.manager.revoke("app")
    assert first.outcome == "rotated"

    again = rig.manager.revoke("app")  # a retry after a lost reply

    assert again.outcome != "failed", again
    assert rig.current_key() == spares[0].secret
    assert _answers(rig, spares[0].secret) == "valid"
    assert spares[0].id not in rig.manager.pool.read().revoked
    assert old.id in again.message


def test_a_later_revoke_of_the_new_key_must_name_it(rig: Rig) -> None:
    _, spares = _setup(rig)
    rig.manager.revoke("app")
    rig.clock.advance(hours=2)  # long after: maybe a new leak, maybe a stale retry

    with pytest.raises(ClaudesecError) as caught:
        rig.manager.revoke("app")
    assert caught.value.exit_code == ExitCode.USAGE
    assert f"--key-id {spares[0].id}" in caught.value.user_message()
    assert _answers(rig, spares[0].secret) == "valid"

    result = rig.manager.revoke("app", key_id=spares[0].id)
    assert result.outcome == "rotated"
    assert _answers(rig, spares[0].secret) == "rejected"
    assert rig.current_key() == spares[1].secret


def test_the_revoked_key_is_refused_through_the_real_sdk(rig: Rig) -> None:
    import anthropic

    old, _ = _setup(rig)
    with pytest.raises(ClaudesecError):
        _without_admin_api(rig).revoke("app")
    rig.manager.rotate(["app"])

    client = anthropic.Anthropic(api_key=old.secret, base_url=rig.emulator.base_url, max_retries=0)
    with client, pytest.raises(anthropic.AuthenticationError):
        client.models.list()


def test_revoking_the_previous_key_by_id_kills_it_without_a_rotation(rig: Rig) -> None:
    old, spares = _setup(rig)
    rig.manager.rotate(["app"], force=True)  # old is AWSPREVIOUS, in its overlap window

    result = rig.manager.revoke("app", key_id=old.id)

    assert result.outcome == "revoked", result
    assert _answers(rig, old.secret) == "rejected"
    assert rig.current_key() == spares[0].secret
    assert _answers(rig, spares[0].secret) == "valid"
    assert old.id not in {r.key_id for r in rig.manager.pool.read().retiring}

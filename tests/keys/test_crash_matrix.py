"""Crash injection at every boto3 call and every Anthropic call of one rotation.

A boto3 crash is a botocore ``before-call`` (the request never left) or ``after-call`` (the
service applied it, the client died) handler raising; from then on every call of that client
fails too, as a dead process would make none. The Anthropic side uses the emulator's fault
knob (dropped connection, 500). After each crash the next run (once the dead run's lease has
expired) must finish the rotation, and no spare may be orphaned or claimed twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config

from claudesec.emulator import IssuedKey
from claudesec.keys.rotation import RotationReport
from tests.keys.conftest import Rig


class Crash(Exception):
    """The process died here."""


class Injector:
    def __init__(self, target: int | None, when: str) -> None:
        self.target, self.when = target, when
        self.calls: list[str] = []
        self.dead = False
        self._current = -1

    def before(self, event_name: str, **_: Any) -> None:
        if self.dead:
            raise Crash("dead")
        self._current = len(self.calls)
        self.calls.append(event_name.rsplit(".", 1)[-1])
        if self.when == "before" and self._current == self.target:
            self.dead = True
            raise Crash(f"before {self.calls[-1]}")

    def after(self, event_name: str, **_: Any) -> None:
        if self.when == "after" and self._current == self.target:
            self.dead = True
            raise Crash(f"after {event_name}")


def _client(rig: Rig, injector: Injector) -> Any:
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=rig.endpoint,
        config=Config(retries={"total_max_attempts": 1}),
    )
    client.meta.events.register("before-call.secrets-manager", injector.before)
    client.meta.events.register("after-call.secrets-manager", injector.after)
    return client


def _setup(rig: Rig) -> tuple[IssuedKey, list[IssuedKey]]:
    rig.reset()
    old = rig.managed("app")
    return old, rig.spares(2)


def _pending_exists(rig: Rig) -> bool:
    return any("AWSPENDING" in s for s in rig.stages().values())


def _assert_finished_cleanly(rig: Rig, old: IssuedKey, spares: list[IssuedKey]) -> None:
    stages = rig.stages()
    assert not any("AWSPENDING" in s for s in stages.values()), stages
    current = rig.current_key()
    assert current in {s.secret for s in spares}
    new = next(s for s in spares if s.secret == current)
    other = next(s for s in spares if s.secret != current)
    assert rig.emulator.state.get_key(new.id).status == "active"
    assert rig.emulator.state.get_key(old.id).status == "active"  # still in its overlap
    doc = rig.manager.pool.read()
    # The promoted spare left the pool; the other one is there, unclaimed and inactive.
    assert [(s.key_id, s.claim) for s in doc.spares] == [(other.id, None)]
    assert rig.emulator.state.get_key(other.id).status == "inactive"
    assert [r.key_id for r in doc.retiring] == [old.id]
    previous = rig.sm.get_secret_value(SecretId="claudesec/app", VersionStage="AWSPREVIOUS")
    assert json.loads(previous["SecretString"])["key_id"] == old.id


def _recover(rig: Rig, old: IssuedKey, spares: list[IssuedKey], label: str) -> None:
    pending = _pending_exists(rig)
    rig.clock.advance(seconds=rig.settings.lease_s + 5)  # the dead run's lease runs out
    report = rig.manager.rotate(["app"])
    (result,) = report.results
    assert result.outcome in ("rotated", "not_due"), (label, result)
    if pending:
        assert result.outcome == "rotated", f"{label}: a pending rotation was not finished"
    if rig.current_key() == old.secret:
        report = rig.manager.rotate(["app"], force=True)
        assert report.results[0].outcome == "rotated", (label, report.results[0])
    _assert_finished_cleanly(rig, old, spares)


def _reference_calls(rig: Rig) -> list[str]:
    _setup(rig)
    injector = Injector(None, "never")
    report = rig.make_manager(client=_client(rig, injector)).rotate(["app"], force=True)
    assert report.results[0].outcome == "rotated"
    return injector.calls


def test_every_boto3_call_of_a_rotation_is_crash_safe(rig: Rig) -> None:
    calls = _reference_calls(rig)
    assert "PutSecretValue" in calls and "UpdateSecretVersionStage" in calls
    outcomes: dict[str, int] = {}
    for when in ("before", "after"):
        for index, op in enumerate(calls):
            label = f"{when} call {index} ({op})"
            old, spares = _setup(rig)
            manager = rig.make_manager(client=_client(rig, Injector(index, when)))
            with pytest.raises(Crash):
                manager.rotate(["app"], force=True)
            _recover(rig, old, spares, label)
            outcomes[label] = 1
    assert len(outcomes) == 2 * len(calls)


def _admin_paths(rig: Rig) -> list[str]:
    """The Anthropic paths one rotation calls, with key ids as placeholders."""
    old, spares = _setup(rig)
    rig.emulator.state.clear_requests()
    rig.manager.rotate(["app"], force=True)
    names = {old.id: "{old}", spares[0].id: "{spare0}", spares[1].id: "{spare1}"}
    paths = []
    for record in rig.emulator.state.requests():
        path = record.path
        for key_id, placeholder in names.items():
            path = path.replace(key_id, placeholder)
        paths.append(path)
    return list(dict.fromkeys(paths))


@pytest.mark.parametrize("fault", ["drop_connection", "server_error", "rate_limit"])
def test_every_anthropic_call_of_a_rotation_fails_cleanly_and_resumes(rig: Rig, fault: str) -> None:
    paths = _admin_paths(rig)
    assert "/v1/models" in paths
    assert "/v1/organizations/api_keys/{spare0}" in paths
    for template in paths:
        old, spares = _setup(rig)
        path = template.format(old=old.id, spare0=spares[0].id, spare1=spares[1].id)
        rig.emulator.state.inject_fault(fault, path_prefix=path, retry_after=0)
        report: RotationReport = rig.manager.rotate(["app"], force=True)
        (result,) = report.results
        assert result.outcome == "failed", (path, result)
        assert int(report.exit_code) == 3
        assert rig.current_key() == old.secret  # consumers still hold a working key
        rig.emulator.state.clear_faults()
        _recover(rig, old, spares, f"{fault} at {path}")


def test_concurrent_consumer_never_reads_a_rejected_key(rig: Rig) -> None:
    import threading

    from claudesec.anthropic_admin import probe_key

    rig.managed("app")
    rig.spares(6)
    consumer = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=rig.endpoint)
    stop = threading.Event()
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        while not stop.is_set():
            value = consumer.get_secret_value(SecretId="claudesec/app", VersionStage="AWSCURRENT")
            key = json.loads(value["SecretString"])["key"]
            seen.append((key[-6:], probe_key(rig.emulator.base_url, key).outcome))

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        for _ in range(6):
            assert rig.manager.rotate(["app"], force=True).results[0].outcome == "rotated"
    finally:
        stop.set()
        thread.join(timeout=10)
    assert len(seen) > 20
    assert {outcome for _, outcome in seen} == {"valid"}
    assert len({tail for tail, _ in seen}) > 1  # the consumer did see rotations happen


def _two_runs(rig: Rig, make: Callable[[], Any]) -> list[str]:
    import threading

    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        outcomes.append(make().rotate(["app"], force=True).results[0].outcome)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def test_two_concurrent_runs_never_both_rotate_one_key(rig: Rig) -> None:
    for _ in range(5):
        old, spares = _setup(rig)

        def make() -> Any:
            client = boto3.client(
                "secretsmanager",
                region_name="us-east-1",
                endpoint_url=rig.endpoint,
                config=Config(retries={"total_max_attempts": 1}),
            )
            return rig.make_manager(client=client)

        outcomes = _two_runs(rig, make)
        assert sorted(outcomes) == ["locked", "rotated"], outcomes
        _assert_finished_cleanly(rig, old, spares)

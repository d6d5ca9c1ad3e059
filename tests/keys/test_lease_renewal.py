"""A run renews its lease as it goes: a slow run keeps its keys, a run that lost one stops."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from claudesec.anthropic_admin import AdminClient, ProbeResult, RemoteKey, probe_key
from claudesec.errors import ExitCode
from claudesec.keys.model import utcnow
from tests.keys.conftest import Rig

# Fake seconds. Each slow call below takes two thirds of a lease; the remaining third is the
# margin for real time, which also passes (a loaded CI machine can spend seconds per call).
LEASE_S = 30
SLOW_CALL_S = 20


class SlowAdmin:
    """The real Admin API client, but every status change takes ``seconds`` of fake time."""

    def __init__(self, real: AdminClient, rig: Rig, seconds: float, after: Any) -> None:
        self.real, self.rig, self.seconds, self.after = real, rig, seconds, after

    def set_status(self, key_id: str, status: Any) -> RemoteKey:
        answer = self.real.set_status(key_id, status)
        self.rig.clock.advance(seconds=self.seconds)
        self.after()
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _intruder(rig: Rig, stolen: list[str]) -> Any:
    """Another run that tries to take every lease it sees held by someone else."""

    def attempt() -> None:
        intruder = rig.make_manager()
        for secret, lease in intruder.pool.read().leases.items():
            if lease.owner != "intruder" and intruder.pool.acquire(secret, "intruder", 60) is None:
                stolen.append(secret)

    return attempt


def _slow_manager(rig: Rig, seconds: float, stolen: list[str]) -> Any:
    attempt = _intruder(rig, stolen)
    admin = AdminClient(
        rig.emulator.base_url, rig.admin_key.secret, max_retries=0, sleep=lambda _: None
    )
    real_probe = partial(probe_key, rig.emulator.base_url, timeout_s=5)

    def probe(key: str) -> ProbeResult:
        result = real_probe(key)
        rig.clock.advance(seconds=seconds)
        attempt()
        return result

    return rig.make_manager(
        settings_=replace(rig.settings, lease_s=LEASE_S),
        admin=SlowAdmin(admin, rig, seconds, attempt),
        probe=probe,
    )


def test_a_long_rotate_all_never_loses_a_lease_mid_key(rig: Rig) -> None:
    names = [f"k{i}" for i in range(4)]
    for name in names:
        rig.managed(name)
    rig.spares(len(names))
    stolen: list[str] = []
    start = utcnow() + rig.clock.offset

    report = _slow_manager(rig, SLOW_CALL_S, stolen).rotate(None, force=True)

    assert [r.outcome for r in report.results] == ["rotated"] * len(names), report.results
    assert stolen == []
    # The run outlived its lease many times over: renewal, not luck, kept the intruder out.
    elapsed = (utcnow() + rig.clock.offset - start).total_seconds()
    assert elapsed > 3 * LEASE_S
    assert rig.manager.pool.read().leases == {}


def test_a_run_whose_lease_was_taken_stops_before_moving_awscurrent(rig: Rig) -> None:
    old = rig.managed("app")
    rig.spares(1)
    stolen: list[str] = []

    # One call slower than the whole lease: the intruder gets in, the run must notice.
    report = _slow_manager(rig, LEASE_S + 1, stolen).rotate(["app"], force=True)

    assert stolen == ["claudesec/app"]
    (result,) = report.results
    assert result.outcome == "failed"
    assert "lost the lock" in result.message
    assert report.exit_code == ExitCode.EXTERNAL
    assert rig.current_key() == old.secret
    assert "finish_secret" not in result.steps
    assert rig.manager.pool.read().leases["claudesec/app"].owner == "intruder"

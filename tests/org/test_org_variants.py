"""Every check of the catalogue has a failing and a passing emulator fixture.

The failing one is the clean organisation with the check's single defect
(:mod:`claudesec.emulator.org_variants`), the passing one the clean organisation; both are
served over HTTP by the session's emulator (reset and reseeded per variant, no new server)
and read by the real inventory reader. On its variant a check fails, with exactly the checks
the variant says the defect implies; on the clean organisation every check runs and passes,
none skipped: the drift checks read a real claudesec key store (Secrets Manager on moto,
managed through :class:`~claudesec.keys.rotation.KeyManager` as `claudesec keys` does), and
the configured spend amount lets ORG-LIM-004 run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from claudesec.anthropic_admin import AdminClient, probe_key
from claudesec.config import OrgConfig
from claudesec.emulator import Emulator
from claudesec.emulator.keys import Actor
from claudesec.emulator.org_fixtures import SeededOrg
from claudesec.emulator.org_variants import VARIANT_SETTINGS, VARIANTS
from claudesec.emulator.orgs import seed_org
from claudesec.keys.events import MemorySink
from claudesec.keys.model import utcnow
from claudesec.keys.rotation import KeyManager, Settings
from claudesec.org import federation
from claudesec.org.catalogue import CHECKS, CHECKS_BY_ID
from claudesec.org.check import CheckRun, run_checks
from claudesec.org.http import AdminHttp
from claudesec.org.inventory import InventoryReader
from claudesec.org.keystore import key_markings
from claudesec.org.model import OrgInventory
from claudesec.stores.secretsmanager import SecretsManagerStore

CONFIG = replace(OrgConfig(), **VARIANT_SETTINGS)
STORE_CHECKS = frozenset({"ORG-KEY-012", "ORG-DRIFT-001", "ORG-DRIFT-002"})


def _read(emulator: Emulator) -> OrgInventory:
    admin = emulator.state.add_key("admin", name="org-reader")
    token = emulator.state.add_oauth_token(scopes=("org:admin",)).access_token
    return InventoryReader(
        AdminHttp(emulator.base_url, timeout_s=5), admin_key=admin.secret, oauth_token=token
    ).read()


def _check(inventory: OrgInventory, markings: dict[str, str] | None = None) -> CheckRun:
    return run_checks(
        inventory,
        CONFIG,
        now=datetime.now(UTC),
        key_markings=markings,
        federation_findings=federation.lint(inventory),
    )


def _failed(run: CheckRun) -> set[str]:
    return {finding.check_id for finding in run.findings}


# ------------------------------------------------------------------------------ key store


@dataclass
class _Clock:
    offset: timedelta = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@dataclass
class KeyStore:
    """claudesec's key store (Secrets Manager on moto) beside the emulated organisation."""

    emulator: Emulator
    manager: KeyManager
    clock: _Clock

    def manage_all(self, seeded: SeededOrg) -> None:
        """Manage every key the clean organisation was seeded with, as `keys add` does."""
        for index, (_, secret) in enumerate(sorted(seeded.key_secrets.items())):
            self.manager.add(f"app{index}", secret)

    def spare(self, seeded: SeededOrg, name: str) -> None:
        """A spare made in the Console like the clean keys (a developer's, expiring)."""
        now = self.emulator.state.now()
        issued = self.emulator.state.add_key(
            name=name,
            workspace_id=seeded.workspace_ids[1],
            user_id=seeded.user_ids[2],
            created_by=Actor(seeded.user_ids[2]),
            created_at=now - timedelta(days=1),
            expires_at=now + timedelta(days=60),
        )
        self.manager.pool_add(issued.secret)


@pytest.fixture
def key_store(
    emulator: Emulator, request: pytest.FixtureRequest
) -> Iterator[Callable[[], KeyStore]]:
    """Makes the store once the organisation is seeded (its Admin key must exist then); moto
    is reset only for the tests that make one."""
    made: list[KeyManager] = []

    def make() -> KeyStore:
        aws_client: Callable[..., Any] = request.getfixturevalue("aws_client")
        clock = _Clock()
        admin = emulator.state.add_key("admin", name="rotator")
        manager = KeyManager(
            SecretsManagerStore(aws_client("secretsmanager")),
            Settings(test_attempts=1, test_delay_s=0.0),
            admin=AdminClient(emulator.base_url, admin.secret, max_retries=0, sleep=lambda _: None),
            probe=partial(probe_key, emulator.base_url, timeout_s=5),
            sink=MemorySink(),
            clock=clock,
            sleep=lambda _: None,
        )
        made.append(manager)
        return KeyStore(emulator, manager, clock)

    yield make
    for manager in made:
        manager.close()


def _unmanaged_console_key(store: KeyStore, seeded: SeededOrg) -> None:
    store.manage_all(seeded)  # the variant's extra key is the one left out


def _managed_key_deactivated(store: KeyStore, seeded: SeededOrg) -> None:
    store.manage_all(seeded)
    victim = sorted(seeded.key_secrets)[0]
    store.emulator.state.update_key(victim, status="inactive")  # an admin in the Console


def _rotated_out_key_reactivated(store: KeyStore, seeded: SeededOrg) -> None:
    store.manage_all(seeded)
    store.spare(seeded, "spare-1")
    store.spare(seeded, "spare-2")
    first = store.manager.rotate(["app0"], force=True)
    assert first.exit_code == 0, first.to_json()
    store.clock.offset += timedelta(hours=25)  # past the overlap: the next run retires it
    second = store.manager.rotate(["app0"], force=True)
    assert second.exit_code == 0, second.to_json()
    original = sorted(seeded.key_secrets)[0]
    assert store.emulator.state.get_key(original).status == "inactive"
    store.emulator.state.update_key(original, status="active")  # re-enabled in the Console


# The local half of the variants whose defect lives in claudesec's key store.
LOCAL_DEFECTS: dict[str, Callable[[KeyStore, SeededOrg], None]] = {
    "ORG-KEY-012": _unmanaged_console_key,
    "ORG-DRIFT-001": _managed_key_deactivated,
    "ORG-DRIFT-002": _rotated_out_key_reactivated,
}


# ------------------------------------------------------------------------------ tests


def test_every_check_of_the_catalogue_has_a_variant() -> None:
    assert set(VARIANTS) == set(CHECKS_BY_ID)
    for variant in VARIANTS.values():
        assert variant.fails <= set(CHECKS_BY_ID), variant.check_id
        assert variant.defect
    assert {v.check_id for v in VARIANTS.values() if v.local} == set(LOCAL_DEFECTS)
    assert set(LOCAL_DEFECTS) == STORE_CHECKS


@pytest.mark.parametrize("check_id", [check.id for check in CHECKS])
def test_the_variant_fails_its_check_and_only_what_the_defect_implies(
    check_id: str, emulator: Emulator, key_store: Callable[[], KeyStore]
) -> None:
    variant = VARIANTS[check_id]
    seeded = seed_org(emulator.state, f"clean+{check_id}")
    markings = None
    if variant.local:
        store = key_store()
        LOCAL_DEFECTS[check_id](store, seeded)
    inventory = _read(emulator)
    if variant.local:
        markings = key_markings(store.manager, inventory)
    assert inventory.unavailable == ()
    run = _check(inventory, markings)
    [outcome] = [o for o in run.outcomes if o.check.id == check_id]
    assert outcome.status == "fail", outcome.reason
    assert _failed(run) == variant.fails


def test_the_clean_organisation_passes_every_check_none_skipped(
    emulator: Emulator, key_store: Callable[[], KeyStore]
) -> None:
    seeded = seed_org(emulator.state, "clean")
    store = key_store()
    store.manage_all(seeded)
    inventory = _read(emulator)
    run = _check(inventory, key_markings(store.manager, inventory))
    assert [f"{f.check_id} {f.resource}" for f in run.findings] == []
    assert {o.check.id: o.reason for o in run.outcomes if o.status != "pass"} == {}
    assert run.count("pass") == len(CHECKS)


def test_a_variant_is_seeded_by_name_and_an_unknown_one_refused(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="no organisation variant"):
        seed_org(emulator.state, "clean+ORG-NOPE-001")
    seeded = seed_org(emulator.state, "clean+ORG-CMP-001")
    assert seeded.name == "clean+ORG-CMP-001"
    assert seeded.defects == (VARIANTS["ORG-CMP-001"].defect,)

"""The keyring store runs the same protocol on a real (file-backed) keyring."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from claudesec.anthropic_admin import AdminClient, probe_key
from claudesec.emulator import Emulator
from claudesec.keys.events import MemorySink
from claudesec.keys.rotation import KeyManager, Settings
from claudesec.stores.interface import CURRENT, PENDING, PREVIOUS, StageConflict
from claudesec.stores.keyring_store import KeyringStore


def test_keyring_store_moves_labels_like_secrets_manager(file_keyring: Any) -> None:
    store = KeyringStore()
    store.create("claudesec/x", "one", tags={"k": "v"}, token="v1")
    store.put_version("claudesec/x", "two", token="v2", stages=[PENDING])
    store.put_version("claudesec/x", "two", token="v2", stages=[PENDING])  # idempotent
    with pytest.raises(StageConflict):
        store.move_stage("claudesec/x", CURRENT, to_version="v2", from_version="v2")
    store.move_stage("claudesec/x", CURRENT, to_version="v2", from_version="v1")
    state = store.describe("claudesec/x")
    assert state.version_with(CURRENT) == "v2" and state.version_with(PREVIOUS) == "v1"
    assert store.read("claudesec/x").text == "two"
    assert [s.name for s in store.list_secrets("claudesec/")] == ["claudesec/x"]


def test_rotation_with_the_keyring_store(file_keyring: Any, emulator: Emulator) -> None:
    admin_key = emulator.state.add_key("admin")
    manager = KeyManager(
        KeyringStore(),
        Settings(test_attempts=1, test_delay_s=0),
        admin=AdminClient(emulator.base_url, admin_key.secret, max_retries=0),
        probe=partial(probe_key, emulator.base_url),
        sink=MemorySink(),
    )
    old = emulator.state.add_key("api")
    spare = emulator.state.add_key("api")
    manager.add("dev", old.secret)
    manager.pool_add(spare.secret)
    (result,) = manager.rotate(["dev"], force=True).results
    assert result.outcome == "rotated", result.message
    assert spare.secret in manager.store.read("claudesec/dev").text
    assert emulator.state.get_key(old.id).status == "active"

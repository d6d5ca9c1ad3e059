"""How claudesec's key store knows each API key of an inventory: the ``key_markings`` input.

``org check --keys`` reads the store (Secrets Manager or the keyring, through a
:class:`~claudesec.keys.rotation.KeyManager`) and marks every key the inventory lists as
``managed``, ``spare``, ``retiring``, ``retired``, ``revoked``, ``orphaned`` or ``unmanaged``
(:func:`claudesec.keys.status.remote_inventory`); the drift checks (ORG-KEY-012,
ORG-DRIFT-001, ORG-DRIFT-002) judge those markings. The keys are the inventory's own listing,
so the markings describe the same read as every other check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claudesec.keys.rotation import KeyManager
    from claudesec.org.model import OrgInventory


def key_markings(manager: KeyManager, inventory: OrgInventory) -> dict[str, str]:
    """API key id -> how the store behind ``manager`` knows it."""
    from claudesec.anthropic_admin import RemoteKey
    from claudesec.keys.status import remote_inventory

    remote = [RemoteKey.from_json(item) for item in inventory.items("api_keys")]
    return {e.key.id: e.marking for e in remote_inventory(manager, remote_keys=remote)}

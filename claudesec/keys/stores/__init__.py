"""Key stores behind one interface: AWS Secrets Manager and the OS keyring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from claudesec.keys.stores.interface import (
    CURRENT,
    PENDING,
    PREVIOUS,
    KeyStore,
    SecretExists,
    SecretNotFound,
    SecretState,
    SecretValue,
    StageConflict,
)

if TYPE_CHECKING:
    from claudesec.config import KeysConfig

__all__ = [
    "CURRENT",
    "PENDING",
    "PREVIOUS",
    "KeyStore",
    "SecretExists",
    "SecretNotFound",
    "SecretState",
    "SecretValue",
    "StageConflict",
    "open_store",
]


def open_store(keys: KeysConfig) -> KeyStore:
    """The store ``keys.store`` names (its heavy library is imported only here)."""
    if keys.store == "keyring":
        from claudesec.keys.stores.keyring_store import KeyringStore

        return KeyringStore()
    from claudesec.keys.stores.secretsmanager import SecretsManagerStore

    return SecretsManagerStore.from_config(keys)

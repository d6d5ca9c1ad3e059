"""Secret stores behind one interface: AWS Secrets Manager and the OS keyring.

Shared by ``claudesec keys`` (rotation, pool, scope) and by every setting that names a secret
instead of holding it (:mod:`claudesec.secrets_source`), so neither reaches into the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from claudesec.registry import Registry
from claudesec.stores.interface import (
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
    "REGISTRY",
    "KeyStore",
    "SecretExists",
    "SecretNotFound",
    "SecretState",
    "SecretValue",
    "StageConflict",
    "open_store",
]


REGISTRY: Registry[Callable[[KeysConfig], KeyStore]] = Registry(
    "key store",
    {
        "keyring": "claudesec.stores.keyring_store:KeyringStore.from_config",
        "secretsmanager": "claudesec.stores.secretsmanager:SecretsManagerStore.from_config",
    },
)


def open_store(keys: KeysConfig) -> KeyStore:
    """The store ``keys.store`` names (its heavy library is imported only here)."""
    return REGISTRY.load(keys.store)(keys)

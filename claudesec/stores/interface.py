"""The one interface every key store implements: versioned secrets with staging labels.

It is Secrets Manager's model (versions, ``AWSCURRENT``/``AWSPENDING``/``AWSPREVIOUS``, tags)
because that is what a crash-safe rotation needs; the keyring store emulates it in one JSON
document per secret, so the rotation state machine and the pool are written once.

The one primitive the pool and the lease rely on is :meth:`KeyStore.move_stage` with
``from_version``: it succeeds only if the label is still on that version, which makes
"read, change, put a new version, move ``AWSCURRENT``" a compare-and-swap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from claudesec.errors import StoreError, UsageError

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"


class SecretNotFound(UsageError):
    """The secret does not exist (exit 2: the name is wrong or it was never added)."""


class SecretExists(UsageError):
    """A secret of that name already exists."""


class StageConflict(StoreError):
    """A compare-and-swap lost: the label was no longer on the version we read."""


@dataclass(frozen=True)
class SecretState:
    """A secret's metadata: which version holds which labels, and its tags. No values."""

    name: str
    versions: Mapping[str, tuple[str, ...]]
    tags: Mapping[str, str] = field(default_factory=dict)

    def version_with(self, stage: str) -> str | None:
        for version_id, stages in self.versions.items():
            if stage in stages:
                return version_id
        return None


@dataclass(frozen=True)
class SecretValue:
    """One version's text. ``repr`` never shows it."""

    version_id: str
    text: str = field(repr=False)


class KeyStore(Protocol):
    """Versioned secrets with staging labels (Secrets Manager, or the keyring emulating it)."""

    kind: str

    def list_secrets(self, prefix: str) -> list[SecretState]:
        """Secrets whose name starts with ``prefix``."""
        ...

    def describe(self, name: str) -> SecretState:
        """Labels and tags of ``name``; :class:`SecretNotFound` if it does not exist."""
        ...

    def read(
        self, name: str, *, stage: str = CURRENT, version_id: str | None = None
    ) -> SecretValue:
        """The text of the version holding ``stage`` (or of ``version_id``)."""
        ...

    def create(self, name: str, text: str, *, tags: Mapping[str, str], token: str) -> str:
        """Create ``name`` with ``text`` as ``AWSCURRENT`` (version id ``token``)."""
        ...

    def put_version(self, name: str, text: str, *, token: str, stages: Sequence[str]) -> None:
        """Add version ``token`` holding ``stages``; repeating the same call is a no-op."""
        ...

    def move_stage(
        self, name: str, stage: str, *, to_version: str | None, from_version: str | None
    ) -> None:
        """Move ``stage`` from ``from_version`` to ``to_version`` (either may be None).

        Raises :class:`StageConflict` when ``from_version`` does not hold ``stage`` or when
        ``stage`` sits on another version that was not named. Moving ``AWSCURRENT`` puts
        ``AWSPREVIOUS`` on the version it left.
        """
        ...

    def set_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags."""
        ...

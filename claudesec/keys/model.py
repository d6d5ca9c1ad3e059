"""The documents claudesec keeps in its secrets: a managed key's value and the pool of spares.

Every dataclass that holds a key shows only its hint in ``repr``, so an assertion message, a
traceback's locals or a debug log never carries a usable key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from claudesec.errors import StoreError
from claudesec.redact import redact

TAG_KIND = "claudesec:kind"
KIND_MANAGED = "managed-key"
KIND_POOL = "pool"
TAG_ROTATED_AT = "claudesec:rotated-at"
TAG_ROTATED_VERSION = "claudesec:rotated-version"
# Written just before a rollback moves AWSCURRENT, so a retry knows where it was going.
TAG_ROLLBACK_TO = "claudesec:rollback-to"
TAG_ROLLBACK_FROM = "claudesec:rollback-from"
TAG_ROLLBACK_AT = "claudesec:rollback-at"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ManagedKey:
    """The value of one version of a managed secret (JSON in the store).

    ``created_at`` is when claudesec wrote this version (the key's age for rotation), not
    when the key was made in the Console: a spare may wait in the pool for months.
    """

    key_id: str
    key: str = field(repr=False)
    name: str
    workspace: str | None
    created_at: str

    @property
    def hint(self) -> str:
        return redact(self.key)

    def to_json(self) -> str:
        return json.dumps(
            {
                "key_id": self.key_id,
                "key": self.key,
                "name": self.name,
                "workspace": self.workspace,
                "created_at": self.created_at,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, *, secret: str) -> ManagedKey:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not data.get("key"):
                raise ValueError("no key")
            return cls(
                key_id=str(data.get("key_id", "")),
                key=str(data["key"]),
                name=str(data.get("name", "")),
                workspace=data.get("workspace"),
                created_at=str(data.get("created_at", "")),
            )
        except (ValueError, TypeError):
            raise StoreError(
                f"secret {secret} does not hold a claudesec key document",
                hint="it must be JSON with key_id, key, name, workspace, created_at",
            ) from None


@dataclass(frozen=True)
class Claim:
    """A spare reserved for one rotation of one secret; ``token`` is that rotation's version.

    ``rejections`` counts the runs whose testSecret saw Anthropic refuse the activated key:
    kept across runs so that a spare that will never work is called out, not retried forever.
    """

    secret: str
    token: str
    at: str
    rejections: int = 0


@dataclass(frozen=True)
class Spare:
    """An inactive key waiting in the pool."""

    key_id: str
    key: str = field(repr=False)
    hint: str
    workspace: str | None
    added_at: str
    claim: Claim | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key_id": self.key_id,
            "key": self.key,
            "hint": self.hint,
            "workspace": self.workspace,
            "added_at": self.added_at,
        }
        if self.claim is not None:
            data["claim"] = {
                "secret": self.claim.secret,
                "token": self.claim.token,
                "at": self.claim.at,
            }
            if self.claim.rejections:
                data["claim"]["rejections"] = self.claim.rejections
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spare:
        raw_claim = data.get("claim")
        claim = None
        if isinstance(raw_claim, Mapping):
            claim = Claim(
                secret=str(raw_claim.get("secret", "")),
                token=str(raw_claim.get("token", "")),
                at=str(raw_claim.get("at", "")),
                rejections=int(raw_claim.get("rejections") or 0),
            )
        return cls(
            key_id=str(data.get("key_id", "")),
            key=str(data.get("key", "")),
            hint=str(data.get("hint", "")),
            workspace=data.get("workspace"),
            added_at=str(data.get("added_at", "")),
            claim=claim,
        )


@dataclass(frozen=True)
class Lease:
    """Who may rotate a secret right now, and until when (a dead holder's lease runs out)."""

    owner: str
    expires_at: str

    def expired(self, now: datetime) -> bool:
        moment = parse_iso(self.expires_at)
        return moment is None or moment <= now


@dataclass(frozen=True)
class Retiring:
    """A key that left ``AWSCURRENT``: deactivated once ``not_before`` has passed."""

    secret: str
    key_id: str
    key: str = field(repr=False)
    not_before: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "secret": self.secret,
            "key_id": self.key_id,
            "key": self.key,
            "not_before": self.not_before,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Retiring:
        return cls(
            secret=str(data.get("secret", "")),
            key_id=str(data.get("key_id", "")),
            key=str(data.get("key", "")),
            not_before=str(data.get("not_before", "")),
        )


@dataclass(frozen=True)
class Revoked:
    """A key that ``keys revoke`` took out of service: claudesec never activates it again.

    The entry is written *before* the key is deactivated, so it is a promise, not a fact:
    ``verified_at`` stays empty until a run has seen the key refused (401), and until then
    ``key`` keeps the key itself so that whichever run comes next can deactivate it and
    prove it. An entry without ``verified_at`` (or one written by an older claudesec, which
    had no such field) is never trusted as done.
    """

    key_id: str
    hint: str
    secret: str
    at: str
    key: str = field(default="", repr=False)
    verified_at: str = ""

    @property
    def finished(self) -> bool:
        return bool(self.verified_at)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"hint": self.hint, "secret": self.secret, "at": self.at}
        if self.verified_at:
            data["verified_at"] = self.verified_at
        elif self.key:
            data["key"] = self.key
        return data


@dataclass(frozen=True)
class PoolDoc:
    """The pool secret's value: the spares, the rotation leases of every managed secret, the
    keys waiting to be deactivated once their overlap window has passed, and the revoked keys.

    They live in one document so that each change is one compare-and-swap. Revoked keys are
    kept here rather than on each managed secret because every path that could bring a key
    back (rollback, a pending version, ``pool add`` of the same key) reads this document
    anyway, and a key id can move between secrets.
    """

    spares: tuple[Spare, ...] = ()
    leases: Mapping[str, Lease] = field(default_factory=dict)
    retiring: tuple[Retiring, ...] = ()
    revoked: Mapping[str, Revoked] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "spares": [s.to_dict() for s in self.spares],
                "leases": {
                    k: {"owner": v.owner, "expires_at": v.expires_at}
                    for k, v in sorted(self.leases.items())
                },
                "retiring": [r.to_dict() for r in self.retiring],
                "revoked": {k: v.to_dict() for k, v in sorted(self.revoked.items())},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, *, secret: str) -> PoolDoc:
        try:
            data = json.loads(text) if text.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("not an object")
            spares = tuple(Spare.from_dict(s) for s in data.get("spares", []))
            leases = {
                str(k): Lease(owner=str(v.get("owner", "")), expires_at=str(v.get("expires_at")))
                for k, v in (data.get("leases") or {}).items()
            }
            retiring = tuple(Retiring.from_dict(r) for r in data.get("retiring", []))
            revoked = {
                str(k): Revoked(
                    key_id=str(k),
                    hint=str(v.get("hint", "")),
                    secret=str(v.get("secret", "")),
                    at=str(v.get("at", "")),
                    key=str(v.get("key", "")),
                    verified_at=str(v.get("verified_at", "")),
                )
                for k, v in (data.get("revoked") or {}).items()
            }
        except (ValueError, TypeError, AttributeError):
            raise StoreError(
                f"the pool secret {secret} is not a claudesec pool document",
                hint="check keys.pool_secret",
            ) from None
        return cls(spares=spares, leases=leases, retiring=retiring, revoked=revoked)

    def unclaimed(self) -> list[Spare]:
        return [s for s in self.spares if s.claim is None]

    def claimed_by(self, secret: str) -> list[Spare]:
        return [s for s in self.spares if s.claim is not None and s.claim.secret == secret]

    def replace_spare(self, key_id: str, spare: Spare | None) -> PoolDoc:
        spares = [s for s in self.spares if s.key_id != key_id]
        if spare is not None:
            index = next((i for i, s in enumerate(self.spares) if s.key_id == key_id), len(spares))
            spares.insert(index, spare)
        return replace(self, spares=tuple(spares))

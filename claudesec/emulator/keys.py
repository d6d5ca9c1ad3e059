"""Key material and identifiers in Anthropic's real formats, generated at run time.

Nothing key-shaped is ever written in the source: every secret is minted here from
``secrets`` when a test or drill asks for one, so the repository stays clean for our own
scanner and for everyone else's.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, NamedTuple

from claudesec.redact import redact

KeyKind = Literal["api", "admin"]
KeyStatus = Literal["active", "inactive", "archived", "expired"]
ActorType = Literal["user", "service_account"]
KeyScope = Literal["workspace", "organization"]
PrincipalType = Literal["user_actor", "service_account_actor"]

KEY_KINDS: tuple[KeyKind, ...] = ("api", "admin")
KEY_STATUSES: tuple[KeyStatus, ...] = ("active", "inactive", "archived", "expired")

# The prefixes are assembled from parts so that no complete key prefix appears in the source
# as a literal a naive scanner would flag.
_FAMILY = "sk-ant-"
KEY_PREFIXES: dict[KeyKind, str] = {"api": _FAMILY + "api03-", "admin": _FAMILY + "admin01-"}

BODY_RANDOM_CHARS = 93
BODY_SUFFIX = "AA"

# Anthropic's object ids are a type prefix, "01", then 22 base-62 characters.
_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_RANDOM_CHARS = 22


def new_id(prefix: str) -> str:
    """A fresh object id such as ``msg_01...`` or ``apikey_01...``."""
    body = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_RANDOM_CHARS))
    return f"{prefix}_01{body}"


def new_request_id() -> str:
    """A fresh ``req_...`` id, as sent in the ``request-id`` header and error bodies."""
    return new_id("req")


def generate_secret(kind: KeyKind = "api") -> str:
    """A new random key in the real format (108 characters for an API key)."""
    if kind not in KEY_PREFIXES:
        raise ValueError(f"unknown key kind {kind!r}; expected one of {KEY_KINDS}")
    # token_urlsafe's alphabet is exactly [A-Za-z0-9_-], the alphabet of real key bodies.
    body = secrets.token_urlsafe(72)[:BODY_RANDOM_CHARS]
    return f"{KEY_PREFIXES[kind]}{body}{BODY_SUFFIX}"


def kind_of_secret(secret: str) -> KeyKind | None:
    """The kind a credential claims by its prefix, or None for anything else."""
    for kind, prefix in KEY_PREFIXES.items():
        if secret.startswith(prefix):
            return kind
    return None


def secret_digest(secret: str) -> str:
    """What the emulator keeps instead of the secret: enough to recognise it, not to use it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def partial_key_hint(secret: str) -> str:
    """Anthropic's ``partial_key_hint``: prefix, first 3 body characters, ``...``, last 4."""
    return redact(secret)


@dataclass(frozen=True)
class Actor:
    """Who created a key, as the Admin API reports it in ``created_by``."""

    id: str
    type: ActorType = "user"


@dataclass(frozen=True)
class Principal:
    """Who a principal-bound key acts as (the Admin API's ``principal``)."""

    type: PrincipalType
    id: str

    def to_json(self) -> dict[str, str]:
        if self.type == "service_account_actor":
            return {"type": self.type, "service_account_id": self.id}
        return {"type": self.type, "user_id": self.id}


@dataclass(frozen=True)
class KeyRecord:
    """One key the emulator knows. Holds a digest of the secret, never the secret."""

    id: str
    kind: KeyKind
    name: str
    status: KeyStatus
    workspace_id: str
    created_at: datetime
    created_by: Actor
    partial_key_hint: str
    expires_at: datetime | None = None
    secret_sha256: str = field(default="", repr=False, compare=False)
    scope: KeyScope = "workspace"
    principal: Principal | None = None

    def scope_json(self) -> dict[str, str]:
        if self.scope == "organization":
            return {"type": "organization"}
        return {"type": "workspace", "workspace_id": self.workspace_id}

    def effective_status(self, now: datetime | None = None) -> KeyStatus:
        """The status the API acts on: a key past ``expires_at`` is ``expired``."""
        if (
            self.status in ("active", "inactive")
            and self.expires_at is not None
            and (now or datetime.now(UTC)) >= self.expires_at
        ):
            return "expired"
        return self.status


class IssuedKey(NamedTuple):
    """A key id and its secret, handed out once by :meth:`EmulatorState.add_key`.

    Unpacks as ``key_id, secret = state.add_key(...)``. Its repr shows only the hint so a
    failing assertion or a log line never prints a usable key.
    """

    id: str
    secret: str

    def __repr__(self) -> str:
        return f"IssuedKey(id={self.id!r}, secret={redact(self.secret)!r})"

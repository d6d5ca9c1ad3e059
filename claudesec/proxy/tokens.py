"""Proxy tokens: per-client credentials that claudesec issues, stores hashed, and can revoke.

A proxy token is what a client holds instead of an Anthropic key (``ANTHROPIC_API_KEY=csp_...``
works with every SDK and with Claude Code). It is worthless anywhere but at the proxy, names
one user and one role, expires, and is revoked with one command.

Only the SHA-256 of each token is kept. A plain (unsalted, fast) hash is enough because the
token carries 256 bits from :func:`secrets.token_bytes`: there is nothing to brute-force, and a
fast hash keeps verification on the request path in microseconds. The ``csp_`` prefix makes a
token recognisable at a glance and to secret scanners, and keeps it from ever being mistaken
for an Anthropic key.

The file is shared between the running proxy and ``claudesec proxy token ...`` in another
process: writes take an exclusive lock and replace the file atomically, and the proxy re-reads
it whenever it changes, so a revocation takes effect on the next request without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from claudesec.errors import CheckFailed, StoreError, UsageError
from claudesec.redact import redact

if TYPE_CHECKING:
    from claudesec.config import ProxyConfig

TOKEN_PREFIX = "csp_"  # noqa: S105 - a prefix, not a secret
_TOKEN_BYTES = 32
# 32 bytes in unpadded base64url are 43 characters.
TOKEN_RE = re.compile(r"^csp_[A-Za-z0-9_-]{43}$")
_ID_RE = re.compile(r"^pt_[0-9a-f]{12}$")
_FILE_VERSION = 1
TokenStatus = Literal["active", "expired", "revoked"]


class TokenRejectReason(StrEnum):
    """Why a presented proxy token was refused; recorded with the denial."""

    MALFORMED = "token_malformed"
    UNKNOWN = "token_unknown"
    EXPIRED = "token_expired"
    REVOKED = "token_revoked"


_MESSAGES = {
    TokenRejectReason.MALFORMED: "the proxy token is malformed",
    TokenRejectReason.UNKNOWN: "the proxy token is not known to this proxy",
    TokenRejectReason.EXPIRED: "the proxy token has expired",
    TokenRejectReason.REVOKED: "the proxy token has been revoked",
}


class TokenRejected(CheckFailed):
    """A presented proxy token is not valid; the message never quotes the token."""

    def __init__(self, reason: TokenRejectReason, token: ProxyToken | None = None) -> None:
        super().__init__(_MESSAGES[reason], hint="ask for a new one: claudesec proxy token create")
        self.reason = reason
        # Known for an expired or revoked token: its id and user tell the audit trail whose
        # old credential is still being tried.
        self.token = token


@dataclass(frozen=True, slots=True)
class ProxyToken:
    """An issued token's record: everything but the token itself."""

    id: str
    user: str
    role: str
    created_at: float
    expires_at: float
    hint: str
    name: str = ""
    revoked_at: float | None = None
    sha256: str = field(default="", repr=False)

    def status(self, now: float) -> TokenStatus:
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        return "active"

    def public(self, now: float) -> dict[str, Any]:
        """The fields shown by ``token list`` (no hash)."""
        data = asdict(self)
        data.pop("sha256")
        data["status"] = self.status(now)
        return data


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly created token: the only time its secret exists outside the client."""

    record: ProxyToken
    secret: str = field(repr=False)


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def default_token_path(proxy: ProxyConfig) -> Path:
    from claudesec.paths import home_dir

    if proxy.token_store:
        return Path(proxy.token_store).expanduser()
    return home_dir() / "proxy-tokens.json"


class TokenStore:
    """The token file. Thread-safe; safe against a second process writing at the same time."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, ProxyToken] = {}

    @classmethod
    def from_config(cls, proxy: ProxyConfig) -> TokenStore:
        return cls(default_token_path(proxy))

    # ----------------------------------------------------------------- the request path

    def verify(self, secret: str) -> ProxyToken:
        """The record of a valid token; :class:`TokenRejected` with the reason otherwise."""
        if not TOKEN_RE.match(secret):
            raise TokenRejected(TokenRejectReason.MALFORMED)
        digest = token_hash(secret)
        with self._lock:
            self._refresh()
            record = self._by_hash.get(digest)
        if record is None:
            raise TokenRejected(TokenRejectReason.UNKNOWN)
        status = record.status(self._clock())
        if status == "revoked":
            raise TokenRejected(TokenRejectReason.REVOKED, record)
        if status == "expired":
            raise TokenRejected(TokenRejectReason.EXPIRED, record)
        return record

    def _refresh(self) -> None:
        # One stat per request (a few microseconds) buys revocation without a restart.
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._by_hash = None, {}
            return
        except OSError as exc:
            raise StoreError(f"cannot read the proxy token file {self.path}: {exc}") from exc
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        records = self._read()
        self._by_hash = {r.sha256: r for r in records}
        self._stamp = stamp

    # ----------------------------------------------------------------- administration

    def create(self, *, user: str, role: str, lifetime_s: float, name: str = "") -> IssuedToken:
        """Issue a token for ``user`` acting as ``role``, valid for ``lifetime_s`` seconds."""
        for label, value in (("user", user), ("role", role), ("name", name)):
            if len(value) > 256 or not value.isprintable():
                raise UsageError(f"the token's {label} must be at most 256 printable characters")
        if not user.strip() or not role.strip():
            raise UsageError("a proxy token needs a --user and a --role")
        if lifetime_s <= 0:
            raise UsageError("a proxy token's lifetime must be positive")
        secret = TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(_TOKEN_BYTES)).decode(
            "ascii"
        ).rstrip("=")
        now = self._clock()
        record = ProxyToken(
            id="pt_" + secrets.token_hex(6),
            user=user,
            role=role,
            created_at=now,
            expires_at=now + lifetime_s,
            hint=redact(secret),
            name=name,
            sha256=token_hash(secret),
        )
        with self._locked() as records:
            records.append(record)
        return IssuedToken(record=record, secret=secret)

    def all(self) -> list[ProxyToken]:
        return sorted(self._read(), key=lambda r: r.created_at)

    def revoke(self, token_id: str) -> ProxyToken:
        """Revoke by id (``pt_...``). Revoking twice is not an error: the first time stands."""
        if not _ID_RE.match(token_id):
            raise UsageError(
                f"not a proxy token id: {token_id!r}", hint="ids look like pt_0123456789ab"
            )
        with self._locked() as records:
            for index, record in enumerate(records):
                if record.id == token_id:
                    if record.revoked_at is None:
                        records[index] = replace(record, revoked_at=self._clock())
                    return records[index]
        raise UsageError(
            f"no proxy token with id {token_id}", hint="see claudesec proxy token list"
        )

    # ----------------------------------------------------------------- the file

    @contextmanager
    def _locked(self) -> Iterator[list[ProxyToken]]:
        import fcntl

        from claudesec.paths import create_private_file

        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock_path = self.path.with_name(self.path.name + ".lock")
            create_private_file(lock_path)
            lock = open(lock_path, "r+b")  # noqa: SIM115 - held across the yield
        except OSError as exc:
            raise StoreError(f"cannot open the proxy token file {self.path}: {exc}") from exc
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = self._read()
            yield records
            self._write(records)
        finally:
            lock.close()

    def _read(self) -> list[ProxyToken]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot read the proxy token file {self.path}: {exc}") from exc
        try:
            data = json.loads(raw)
            if data.get("version") != _FILE_VERSION:
                raise ValueError(f"unsupported version {data.get('version')!r}")
            return [ProxyToken(**item) for item in data["tokens"]]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise StoreError(
                f"the proxy token file {self.path} is damaged: {exc}",
                hint="restore it from a backup or move it away and issue new tokens",
            ) from exc

    def _write(self, records: list[ProxyToken]) -> None:
        from claudesec.paths import create_private_file

        body = json.dumps(
            {"version": _FILE_VERSION, "tokens": [asdict(r) for r in records]}, indent=1
        )
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            create_private_file(temp)
            with open(temp, "w", encoding="utf-8") as handle:
                handle.write(body + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StoreError(f"cannot write the proxy token file {self.path}: {exc}") from exc

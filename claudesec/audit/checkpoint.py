"""Signed checkpoints: Ed25519 signatures over the chain head, chained to each other.

A checkpoint signs ``(store id, number, seq, rec_hash, previous checkpoint hash, time, public
key)``. Chaining checkpoints means that removing or rewriting one breaks every later one, and
binding the store id stops a checkpoint of one store from vouching for another.

The exported form (:meth:`Checkpoint.to_export`) is a small JSON document that carries the
public key. Kept off the host, it is an *anchor*: ``logs verify --anchor FILE`` then catches an
attacker who truncated the store and its checkpoint table together, or who re-signed a rewritten
history with a key of their own (the anchor's key, not the one in the database, is trusted).

The same key signs each prune (:func:`sign_prune`): the prune event's signature over the store
id, the event's seq and the checkpoint it kept is the only thing that lets ``logs verify``
accept records missing before the first kept one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from claudesec.errors import UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

EXPORT_FORMAT = "claudesec-audit-checkpoint"
EXPORT_VERSION = 1
_DOMAIN = b"claudesec.audit.checkpoint.v1\x00"
_GENESIS_DOMAIN = b"claudesec.audit.checkpoint-genesis.v1\x00"
_PRUNE_DOMAIN = b"claudesec.audit.prune.v1\x00"


def checkpoint_genesis(store_id: bytes) -> bytes:
    """What checkpoint #1 points back to."""
    return hashlib.sha256(_GENESIS_DOMAIN + store_id).digest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed checkpoint. Hashes and keys are raw bytes."""

    store_id: bytes
    number: int
    seq: int
    rec_hash: bytes
    prev_hash: bytes
    time_ns: int
    public_key: bytes
    signature: bytes

    def message(self) -> bytes:
        """The exact bytes that are signed (fixed-width fields: no parsing ambiguity)."""
        return b"".join(
            (
                _DOMAIN,
                self.store_id,
                self.number.to_bytes(8, "big"),
                self.seq.to_bytes(8, "big"),
                self.rec_hash,
                self.prev_hash,
                self.time_ns.to_bytes(8, "big"),
                self.public_key,
            )
        )

    @property
    def hash(self) -> bytes:
        """What the next checkpoint points back to."""
        return hashlib.sha256(self.message()).digest()

    def signature_valid(self, public_key: bytes | None = None) -> bool:
        """Whether the signature verifies under ``public_key`` (default: the one it names)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            key = Ed25519PublicKey.from_public_bytes(public_key or self.public_key)
            key.verify(self.signature, self.message())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_export(self) -> dict[str, Any]:
        """The JSON document to keep off the host (public data only)."""
        from claudesec.audit.secrets import public_key_fingerprint
        from claudesec.timeparse import format_ns

        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "store_id": self.store_id.hex(),
            "checkpoint": self.number,
            "seq": self.seq,
            "rec_hash": self.rec_hash.hex(),
            "prev_checkpoint_hash": self.prev_hash.hex(),
            "time": format_ns(self.time_ns, precise=True),
            "time_ns": self.time_ns,
            "public_key": self.public_key.hex(),
            "public_key_fingerprint": public_key_fingerprint(self.public_key),
            "signature": self.signature.hex(),
            "checkpoint_hash": self.hash.hex(),
        }

    @classmethod
    def from_export(cls, data: Mapping[str, Any], *, source: str = "anchor") -> Checkpoint:
        """Parse an exported checkpoint; a :class:`UsageError` if it is not one."""
        if data.get("format") != EXPORT_FORMAT:
            raise UsageError(f"{source} is not an exported claudesec audit checkpoint")
        if data.get("version") != EXPORT_VERSION:
            raise UsageError(f"{source}: unsupported checkpoint format version")
        try:
            checkpoint = cls(
                store_id=bytes.fromhex(data["store_id"]),
                number=int(data["checkpoint"]),
                seq=int(data["seq"]),
                rec_hash=bytes.fromhex(data["rec_hash"]),
                prev_hash=bytes.fromhex(data["prev_checkpoint_hash"]),
                time_ns=int(data["time_ns"]),
                public_key=bytes.fromhex(data["public_key"]),
                signature=bytes.fromhex(data["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{source}: malformed checkpoint ({exc})") from exc
        if not checkpoint.signature_valid():
            raise UsageError(f"{source}: the checkpoint's own signature does not verify")
        return checkpoint

    @classmethod
    def load_export(cls, text: str, *, source: str = "anchor") -> Checkpoint:
        """Parse an exported checkpoint file's text."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{source} is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise UsageError(f"{source} is not an exported claudesec audit checkpoint")
        return cls.from_export(data, source=source)


def sign_checkpoint(
    key: Ed25519PrivateKey,
    *,
    store_id: bytes,
    number: int,
    seq: int,
    rec_hash: bytes,
    prev_hash: bytes,
    time_ns: int,
) -> Checkpoint:
    """Build and sign checkpoint ``number`` over the chain head ``(seq, rec_hash)``."""
    unsigned = Checkpoint(
        store_id=store_id,
        number=number,
        seq=seq,
        rec_hash=rec_hash,
        prev_hash=prev_hash,
        time_ns=time_ns,
        public_key=public_key_bytes(key),
        signature=b"",
    )
    return Checkpoint(
        store_id=store_id,
        number=number,
        seq=seq,
        rec_hash=rec_hash,
        prev_hash=prev_hash,
        time_ns=time_ns,
        public_key=unsigned.public_key,
        signature=key.sign(unsigned.message()),
    )


def prune_message(*, store_id: bytes, event_seq: int, anchor: Checkpoint) -> bytes:
    """What a prune signs: this store, the seq of its prune event, and the checkpoint it kept
    (number, seq and hash), so the event proves exactly one prune of exactly one store."""
    return b"".join(
        (
            _PRUNE_DOMAIN,
            store_id,
            event_seq.to_bytes(8, "big"),
            anchor.number.to_bytes(8, "big"),
            anchor.seq.to_bytes(8, "big"),
            anchor.hash,
        )
    )


def sign_prune(
    key: Ed25519PrivateKey, *, store_id: bytes, event_seq: int, anchor: Checkpoint
) -> bytes:
    """The signature a prune event carries (see :func:`prune_message`)."""
    return key.sign(prune_message(store_id=store_id, event_seq=event_seq, anchor=anchor))


def prune_signature_valid(
    public_key: bytes, signature: bytes, *, store_id: bytes, event_seq: int, anchor: Checkpoint
) -> bool:
    """Whether ``signature`` is ``public_key``'s over this prune (see :func:`prune_message`)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    message = prune_message(store_id=store_id, event_seq=event_seq, anchor=anchor)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_pem(public_key: bytes) -> str:
    """The public key as PEM (SubjectPublicKeyInfo), for auditors' tools."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PublicKey.from_public_bytes(public_key)
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_key(text: str, *, source: str = "public key") -> bytes:
    """A raw Ed25519 public key from PEM, 64 hex digits, or an exported checkpoint."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return Checkpoint.load_export(stripped, source=source).public_key
    if stripped.startswith("-----BEGIN"):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            PublicFormat,
            load_pem_public_key,
        )

        try:
            key = load_pem_public_key(stripped.encode("ascii"))
        except ValueError as exc:
            raise UsageError(f"{source} is not a valid PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise UsageError(f"{source} is not an Ed25519 public key")
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        raw = bytes.fromhex(stripped)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UsageError(f"{source}: expected a PEM Ed25519 public key or 64 hex digits")
    return raw

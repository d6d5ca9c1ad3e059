"""Envelope encryption shared by the archive and the prompt vault.

Data is sealed with AES-256-GCM under a data key; the data key is wrapped by a key-encryption
key (KEK) and only the wrapped form is ever written. Two KEKs: AWS KMS (``GenerateDataKey`` /
``Decrypt``, with an encryption context so a wrapped key only unwraps for what it was made
for) and a local 32-byte key (RFC 3394 AES key wrap) kept in a 0600 file in CLAUDESEC_HOME or
in the OS keyring. Each user of this module names its own local KEK, so access to archived
records and to stored prompt text can be granted separately.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path
from typing import Any, Protocol

from claudesec.errors import ConfigError, ExternalServiceError, UsageError

NONCE_BYTES = 12
DATA_KEY_BYTES = 32


class KeyEncryptionKey(Protocol):
    """Wraps and unwraps data keys."""

    key_id: str

    def new_data_key(self, context: str) -> tuple[bytes, dict[str, str]]:
        """A fresh 32-byte data key and how to recover it (stored beside the ciphertext)."""
        ...

    def unwrap(self, wrapped: dict[str, str], context: str) -> bytes: ...


class LocalKek:
    """A local 32-byte KEK (0600 file in CLAUDESEC_HOME, or the OS keyring)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != DATA_KEY_BYTES:
            raise ConfigError("a key-encryption key must be 32 bytes")
        self._key = key
        self.key_id = "local:" + hashlib.sha256(b"claudesec.kek\x00" + key).hexdigest()[:16]

    @classmethod
    def load(cls, backend: str, directory: Path, name: str = "archive-kek") -> LocalKek:
        """The installation's KEK called ``name``, created on first use (race-free, like the
        audit keys)."""
        from claudesec.audit.secrets import AuditKeys

        keys = AuditKeys(directory, "keyring" if backend == "keyring" else "file")
        return cls(keys._load_or_create(name))

    def new_data_key(self, context: str) -> tuple[bytes, dict[str, str]]:
        from cryptography.hazmat.primitives.keywrap import aes_key_wrap

        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        wrapped = aes_key_wrap(self._key, data_key)
        return data_key, {"kek": self.key_id, "wrapped_key": base64.b64encode(wrapped).decode()}

    def unwrap(self, wrapped: dict[str, str], context: str) -> bytes:
        from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

        if wrapped.get("kek") != self.key_id:
            raise UsageError(
                f"this data was encrypted under {wrapped.get('kek')}, not {self.key_id}"
            )
        try:
            return aes_key_unwrap(self._key, base64.b64decode(wrapped["wrapped_key"]))
        except (InvalidUnwrap, KeyError, ValueError) as exc:
            raise UsageError("the data key does not unwrap with this KEK") from exc


class KmsKek:
    """AWS KMS: the data key comes from ``GenerateDataKey`` and never leaves memory in clear."""

    def __init__(self, key_id: str, client: Any) -> None:
        self.key_id = key_id
        self._kms = client

    @classmethod
    def create(cls, key_id: str, region: str = "", endpoint_url: str = "") -> KmsKek:
        import boto3

        return cls(
            key_id,
            boto3.client("kms", region_name=region or None, endpoint_url=endpoint_url or None),
        )

    def new_data_key(self, context: str) -> tuple[bytes, dict[str, str]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._kms.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext={"claudesec": context}
            )
        except (BotoCoreError, ClientError) as exc:
            raise ExternalServiceError(f"KMS GenerateDataKey failed: {exc}") from exc
        return bytes(answer["Plaintext"]), {
            "kek": f"kms:{answer.get('KeyId', self.key_id)}",
            "wrapped_key": base64.b64encode(answer["CiphertextBlob"]).decode(),
        }

    def unwrap(self, wrapped: dict[str, str], context: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._kms.decrypt(
                CiphertextBlob=base64.b64decode(wrapped["wrapped_key"]),
                EncryptionContext={"claudesec": context},
            )
        except (BotoCoreError, ClientError) as exc:
            raise ExternalServiceError(f"KMS Decrypt failed: {exc}") from exc
        return bytes(answer["Plaintext"])


def kek_from_config(
    source: str,
    *,
    region: str = "",
    endpoint_url: str = "",
    name: str = "archive-kek",
    setting: str = "archive.kek_source",
) -> KeyEncryptionKey:
    """The KEK a ``kek_source`` setting names: ``file``, ``keyring`` or ``kms:KEY_ID``.

    ``name`` is the local KEK's file/keyring entry; ``setting`` names the option in errors.
    """
    from claudesec.paths import ensure_home

    if source.startswith("kms:"):
        return KmsKek.create(source[4:], region, endpoint_url)
    if source in ("file", "keyring"):
        return LocalKek.load(source, ensure_home(), name)
    raise ConfigError(f"{setting} must be 'file', 'keyring' or 'kms:KEY_ID', got {source!r}")


def encrypt(data_key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """``(nonce, ciphertext)``: AES-256-GCM under a fresh random nonce.

    The nonce is random rather than a counter so that two writers sharing a data key (two
    processes on one vault) cannot collide; 96 random bits keep that safe far beyond the
    number of messages a data key is used for here.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce, AESGCM(data_key).encrypt(nonce, plaintext, aad)


def decrypt(data_key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
    """The plaintext, or None when the key is wrong or the ciphertext or its AAD was changed."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(data_key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        return None

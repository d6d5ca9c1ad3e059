"""The audit log's two keys: the prompt-hash HMAC key and the checkpoint signing key.

Both are per installation and created on first use. By default they are 0600 files in
``$CLAUDESEC_HOME`` (``audit.key_store = "file"``); ``audit.key_store = "keyring"`` keeps them
in the OS keyring instead. ``keyring`` is imported only when that backend is chosen, because
it costs ~0.13 s and the file backend is what servers and containers use.

Creation is race-free between processes: a key file is written under a temporary name and
``link()``-ed into place, so when two writers start at once exactly one key wins and both use
it. Two different prompt keys would silently break correlation of equal prompts; two signing
keys would make checkpoints unverifiable.

The prompt key makes :func:`prompt_hash` a keyed HMAC-SHA256: equal prompts correlate within an
installation, but a short or guessable prompt cannot be recovered by hashing candidates
without the key.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from claudesec.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from claudesec.config import AuditConfig

KeyBackend = Literal["file", "keyring"]

PROMPT_KEY_NAME = "audit-prompt-hmac"
SIGNING_KEY_NAME = "audit-signing-ed25519"
KEYRING_SERVICE = "claudesec"
_KEY_BYTES = 32


class AuditKeys:
    """Loads (creating on first use) the audit keys from 0600 files or the OS keyring."""

    def __init__(self, directory: Path, backend: KeyBackend = "file") -> None:
        if backend not in ("file", "keyring"):
            raise ConfigError(f"audit.key_store must be 'file' or 'keyring', got {backend!r}")
        self.directory = directory
        self.backend: KeyBackend = backend
        self._prompt_key: bytes | None = None
        self._signing_seed: bytes | None = None

    @classmethod
    def from_config(cls, audit: AuditConfig) -> AuditKeys:
        from claudesec.paths import ensure_home

        backend: KeyBackend = "keyring" if audit.key_store == "keyring" else "file"
        return cls(ensure_home(), backend)

    # ----------------------------------------------------------------- public API

    def prompt_key(self) -> bytes:
        """The installation's HMAC key for prompt hashes (created on first use)."""
        if self._prompt_key is None:
            self._prompt_key = self._load_or_create(PROMPT_KEY_NAME)
        return self._prompt_key

    def prompt_hasher(self) -> Callable[[str | bytes], str]:
        """A ``prompt_hash`` bound to this installation's key."""
        key = self.prompt_key()
        return lambda text: prompt_hash(text, key=key)

    def signing_key(self) -> Ed25519PrivateKey:
        """The checkpoint signing key (created on first use)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if self._signing_seed is None:
            self._signing_seed = self._load_or_create(SIGNING_KEY_NAME)
        return Ed25519PrivateKey.from_private_bytes(self._signing_seed)

    def existing_public_key(self) -> bytes | None:
        """The signing key's public half if a key file already exists (never creates one).

        Only the file backend answers: ``verify`` must not trigger keyring prompts.
        """
        if self.backend != "file":
            return None
        path = self.directory / f"{SIGNING_KEY_NAME}.key"
        if not path.exists():
            return None
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        seed = self._read_file(path)
        key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def location(self, name: str) -> str:
        """Where a key lives, for messages (never the key)."""
        if self.backend == "keyring":
            return f"keyring {KEYRING_SERVICE}/{name}"
        return str(self.directory / f"{name}.key")

    # ----------------------------------------------------------------- backends

    def _load_or_create(self, name: str) -> bytes:
        if self.backend == "keyring":
            return self._keyring_load_or_create(name)
        return self._file_load_or_create(self.directory / f"{name}.key")

    def _file_load_or_create(self, path: Path) -> bytes:
        if path.exists():
            return self._read_file(path)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                os.write(fd, secrets.token_bytes(_KEY_BYTES).hex().encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process created it first: use theirs
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the audit key {path}: {exc.strerror or exc}",
                hint="check that CLAUDESEC_HOME is writable",
            ) from exc
        return self._read_file(path)

    @staticmethod
    def _read_file(path: Path) -> bytes:
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"the audit key {path} is accessible by other users "
                    f"(mode {stat.S_IMODE(mode):04o})",
                    hint=f"chmod 600 {path}",
                )
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read the audit key {path}: {exc}") from exc
        return _decode_key(text, str(path))

    @staticmethod
    def _keyring_load_or_create(name: str) -> bytes:
        import keyring
        from keyring.errors import KeyringError

        try:
            text = keyring.get_password(KEYRING_SERVICE, name)
            if text is None:
                keyring.set_password(KEYRING_SERVICE, name, secrets.token_bytes(_KEY_BYTES).hex())
                # Read back rather than trust our own value: a concurrent creator may have won.
                text = keyring.get_password(KEYRING_SERVICE, name)
        except KeyringError as exc:
            raise StoreError(
                f"the OS keyring failed for {KEYRING_SERVICE}/{name}: {type(exc).__name__}",
                hint="unlock the keyring or set audit.key_store = 'file'",
            ) from exc
        if text is None:
            raise StoreError(f"the OS keyring did not keep {KEYRING_SERVICE}/{name}")
        return _decode_key(text.strip(), f"keyring {KEYRING_SERVICE}/{name}")


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_BYTES:
        # Never echo the content: it is (or is meant to be) a secret.
        raise StoreError(f"the audit key in {where} is malformed (expected 64 hex digits)")
    return key


def prompt_hash(text: str | bytes, *, key: bytes | None = None) -> str:
    """HMAC-SHA256 of a prompt under the installation key, as 64 hex digits.

    ``text`` is hashed as UTF-8 when a string. Without ``key``, the key configured for this
    installation is loaded (and created on first use).
    """
    if key is None:
        key = _default_keys().prompt_key()
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    return hmac.new(key, data, hashlib.sha256).hexdigest()


_default: AuditKeys | None = None


def _default_keys() -> AuditKeys:
    global _default  # noqa: PLW0603 - one key loader per process, like the console
    from claudesec.config import load_config
    from claudesec.paths import home_dir

    home = home_dir()
    if _default is None or _default.directory != home:
        _default = AuditKeys.from_config(load_config().config.audit)
    return _default


def public_key_fingerprint(public_key: bytes) -> str:
    """A short, stable name for a signing key (safe to print: it is public)."""
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:16]

"""The prompt vault: the text of recorded calls, encrypted, beside (never inside) the audit store.

For teams whose compliance needs the prompts. The audit store keeps only a keyed hash; when
``[prompt_vault] enabled = true`` the request body that was actually sent (after DLP
redaction, so a redacted secret is not kept here either) is sealed with the same envelope
encryption as the archive (:mod:`claudesec.audit.envelope`) and written to a separate 0600
SQLite file, keyed by the audit record's ``seq``.

Each row carries its own wrapped data key, so a row is readable on its own and pruning is a
plain ``DELETE`` with nothing left dangling. A data key seals ``data_key_uses`` prompts before
a new one is made, so KMS is called once per many prompts rather than once per call. The AAD
binds a ciphertext to its ``seq`` and the record's chain hash: a ciphertext moved to another
row, or a vault from another store, fails to open.

Separation of duties: with ``kek_source = "kms:KEY_ID"`` the application's role needs only
``kms:GenerateDataKey``; reading (``kms:Decrypt``) can be granted to the compliance team alone.
A local KEK (file or keyring) both seals and opens, so whoever runs the application can read.

Every read goes through :func:`open_prompt`, which writes a ``prompt_access`` audit event
first and refuses to decrypt when that event cannot be written.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from claudesec.audit import envelope
from claudesec.audit.envelope import KeyEncryptionKey
from claudesec.errors import ConfigError, StoreError, UsageError

if TYPE_CHECKING:
    from claudesec.audit.events import AuditEvent
    from claudesec.audit.store import StoredEvent, StoredRecord
    from claudesec.config import PromptVaultConfig

DEFAULT_FILENAME = "prompt-vault.db"
KEK_NAME = "prompt-vault-kek"
ACCESS_EVENT = "prompt_access"
_AAD_DOMAIN = "claudesec.prompt.v1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    seq INTEGER PRIMARY KEY,
    rec_hash TEXT NOT NULL,
    request_id TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    kek TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    key_context TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS prompts_time ON prompts (time_ns);
"""


@dataclass(frozen=True, slots=True)
class VaultedPrompt:
    """One decrypted prompt: the request body as it was sent, and whose record it belongs to."""

    seq: int
    rec_hash: str
    request_id: str
    time_ns: int
    body: Any


@dataclass(frozen=True, slots=True)
class _DataKey:
    key: bytes
    kek: str
    wrapped_key: str
    context: str


class AuditReader(Protocol):
    """What :func:`open_prompt` needs from the audit store: read a record, append one."""

    def get(self, seq: int) -> StoredEvent | None: ...

    def append(self, event: AuditEvent) -> StoredRecord: ...


def default_vault_path(settings: PromptVaultConfig) -> Path:
    """``prompt_vault.path`` (relative paths are under CLAUDESEC_HOME) or the default file."""
    from claudesec.paths import ensure_home, home_dir

    if settings.path:
        path = Path(settings.path).expanduser()
        return path if path.is_absolute() else home_dir() / path
    return ensure_home() / DEFAULT_FILENAME


def vault_kek(settings: PromptVaultConfig) -> KeyEncryptionKey:
    """The vault's KEK per ``prompt_vault.kek_source`` (never the archive's local KEK)."""
    return envelope.kek_from_config(
        settings.kek_source,
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        name=KEK_NAME,
        setting="prompt_vault.kek_source",
    )


class PromptVault:
    """The encrypted prompt file. Thread-safe: one pipeline may call it from many threads.

    ``kek`` is needed to seal (``store_prompt``) and to open (``read_prompt``); counting and
    pruning work without it.
    """

    def __init__(
        self, conn: sqlite3.Connection, path: Path, kek: KeyEncryptionKey | None, uses: int
    ) -> None:
        self._conn = conn
        self.path = path
        self._kek = kek
        self._uses_per_key = max(1, uses)
        self._lock = threading.Lock()
        self._current: _DataKey | None = None
        self._current_uses = 0
        self._unwrapped: dict[str, bytes] = {}

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        kek: KeyEncryptionKey | None = None,
        data_key_uses: int = 10_000,
        busy_timeout_ms: int = 5000,
    ) -> Self:
        """Open (creating, mode 0600) the vault file at ``path``."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # Created 0600 before SQLite opens it; SQLite gives its -wal/-shm files the same mode.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            conn = sqlite3.connect(
                path,
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout_ms / 1000,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the prompt vault {path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Freed pages are zeroed, so a pruned ciphertext does not linger in the file.
            conn.execute("PRAGMA secure_delete=ON")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot initialise the prompt vault {path}: {exc}") from exc
        return cls(conn, path, kek, data_key_uses)

    @classmethod
    def from_config(cls, settings: PromptVaultConfig, *, with_kek: bool = True) -> Self:
        """The configured vault (``with_kek=False`` for pruning and counting only)."""
        if settings.data_key_uses < 1:
            raise ConfigError("prompt_vault.data_key_uses must be at least 1")
        kek = vault_kek(settings) if with_kek else None
        return cls.open(default_vault_path(settings), kek=kek, data_key_uses=settings.data_key_uses)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- writing

    def store_prompt(
        self,
        seq: int,
        rec_hash: str,
        body: Any,
        *,
        request_id: str = "",
        time_ns: int | None = None,
    ) -> None:
        """Seal ``body`` (the JSON request body as sent) for the audit record ``seq``.

        Raises :class:`StoreError` when it cannot be written; a second prompt for the same
        ``seq`` is refused rather than overwriting the first.
        """
        kek = self._require_kek()
        plaintext = zlib.compress(
            json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 6
        )
        with self._lock:
            data_key = self._data_key(kek)
            nonce, ciphertext = envelope.encrypt(
                data_key.key, plaintext, _aad(seq, rec_hash, data_key.context)
            )
            try:
                self._conn.execute(
                    "INSERT INTO prompts (seq, rec_hash, request_id, time_ns, kek, wrapped_key, "
                    "key_context, nonce, ciphertext) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        seq,
                        rec_hash,
                        request_id[:200],
                        time.time_ns() if time_ns is None else time_ns,
                        data_key.kek,
                        data_key.wrapped_key,
                        data_key.context,
                        nonce,
                        ciphertext,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"the prompt vault already holds a prompt for {seq}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to the prompt vault: {exc}") from exc

    def _data_key(self, kek: KeyEncryptionKey) -> _DataKey:
        if self._current is None or self._current_uses >= self._uses_per_key:
            # A random context names the key to KMS: a wrapped key lifted into another
            # system's ciphertext does not decrypt under a different context.
            context = "prompt-vault:" + secrets.token_hex(12)
            key, wrapped = kek.new_data_key(context)
            self._current = _DataKey(key, wrapped["kek"], wrapped["wrapped_key"], context)
            self._current_uses = 0
        self._current_uses += 1
        return self._current

    # ----------------------------------------------------------------- reading

    def rec_hash_of(self, seq: int) -> str | None:
        """The chain hash of the record the prompt ``seq`` was stored for (None: no prompt)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT rec_hash FROM prompts WHERE seq = ?", (seq,)
            ).fetchone()
        return None if row is None else str(row[0])

    def count(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM prompts").fetchone()
        return int(row[0])

    def read_prompt(self, seq: int) -> VaultedPrompt:
        """Decrypt one prompt. Prefer :func:`open_prompt`, which records the access."""
        kek = self._require_kek()
        with self._lock:
            row = self._conn.execute(
                "SELECT rec_hash, request_id, time_ns, kek, wrapped_key, key_context, nonce, "
                "ciphertext FROM prompts WHERE seq = ?",
                (seq,),
            ).fetchone()
        if row is None:
            raise UsageError(f"the prompt vault holds no prompt for record {seq}")
        rec_hash, request_id, time_ns, kek_id, wrapped_key, context, nonce, ciphertext = row
        data_key = self._unwrapped.get(wrapped_key)
        if data_key is None:
            data_key = kek.unwrap({"kek": kek_id, "wrapped_key": wrapped_key}, context)
            self._unwrapped[wrapped_key] = data_key
        plaintext = envelope.decrypt(
            data_key, bytes(nonce), bytes(ciphertext), _aad(seq, rec_hash, context)
        )
        if plaintext is None:
            raise StoreError(
                f"the vault's prompt for record {seq} does not decrypt: it was modified or "
                "moved from another row"
            )
        body = json.loads(zlib.decompress(plaintext).decode("utf-8"))
        return VaultedPrompt(seq, rec_hash, request_id, int(time_ns), body)

    # ----------------------------------------------------------------- pruning

    def prune(self, *, through_seq: int = 0, older_than_ns: int = 0) -> int:
        """Delete prompts of records up to ``through_seq`` and those older than
        ``older_than_ns``; returns how many were deleted. Needs no KEK."""
        with self._lock:
            try:
                cursor = self._conn.execute(
                    "DELETE FROM prompts WHERE seq <= ? OR time_ns < ?",
                    (through_seq, older_than_ns),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot prune the prompt vault: {exc}") from exc
            return cursor.rowcount

    def _require_kek(self) -> KeyEncryptionKey:
        if self._kek is None:
            raise UsageError("the prompt vault was opened without its key-encryption key")
        return self._kek


def _aad(seq: int, rec_hash: str, context: str) -> bytes:
    return f"{_AAD_DOMAIN}:{seq}:{rec_hash}:{context}".encode()


def prune_prompt_vault(
    settings: PromptVaultConfig, *, through_seq: int, now_ns: int | None = None
) -> int:
    """Prune the configured vault with ``logs prune``: prompts of pruned records (``seq <=
    through_seq``), and those past ``prompt_vault.retention_days``. A vault that was never
    created is left uncreated (returns 0)."""
    path = default_vault_path(settings)
    if not path.exists():
        return 0
    cutoff = 0
    if settings.retention_days > 0:
        now = time.time_ns() if now_ns is None else now_ns
        cutoff = now - settings.retention_days * 86_400 * 1_000_000_000
    with PromptVault.open(path) as vault:
        return vault.prune(through_seq=through_seq, older_than_ns=cutoff)


def open_prompt(
    store: AuditReader, vault: PromptVault, seq: int, *, reader: str, app: str = ""
) -> VaultedPrompt:
    """Decrypt the prompt of record ``seq`` for ``reader``, recording the access first.

    Refuses (without decrypting) when the prompt does not belong to the store's record ``seq``
    (a vault from another store) or when the access event cannot be written.
    """
    from claudesec.audit.events import AuditEvent

    rec_hash = vault.rec_hash_of(seq)
    if rec_hash is None:
        raise UsageError(f"the prompt vault holds no prompt for record {seq}")
    stored = store.get(seq)
    if stored is None or stored.rec_hash != rec_hash:
        raise UsageError(
            f"the vault's prompt {seq} does not belong to record {seq} of this audit store",
            hint="point --store at the store the vault was written with",
        )
    store.append(
        AuditEvent(type=ACCESS_EVENT, user=reader[:256], app=app, extra={"prompt_seq": seq})
    )
    return vault.read_prompt(seq)

"""Encrypted, signed archives of the records ``logs prune`` removes.

A file holds one contiguous range of records, exactly as stored (``seq``, ``prev_hash``,
``rec_hash``, body), compressed then encrypted with AES-256-GCM under a fresh data key.
Envelope encryption: the data key is wrapped by a key-encryption key, either AWS KMS
(``GenerateDataKey``/``Decrypt`` with the store id as encryption context) or a local 32-byte
KEK (RFC 3394 AES key wrap) kept in a 0600 file or the OS keyring
(:mod:`claudesec.audit.envelope`, shared with the prompt vault).

Layout: ``CLAUDESEC-ARCHIVE-1\\n`` + the manifest (canonical JSON) + ``\\n`` + the Ed25519
signature of the manifest by the store's checkpoint key (hex) + ``\\n`` + the ciphertext. The
manifest names the range, the chain hashes at both ends, the checkpoint that anchors the end,
the wrapped key and the SHA-256 of ciphertext and plaintext. :func:`verify_archive` checks
the signature and ciphertext hash with no key at all, and, given the KEK, decrypts and
re-computes the whole hash chain up to the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claudesec.audit import envelope
from claudesec.audit.checkpoint import Checkpoint
from claudesec.audit.envelope import KeyEncryptionKey, KmsKek, LocalKek
from claudesec.audit.events import canonical_dumps
from claudesec.audit.store import AuditStore, record_hash
from claudesec.errors import (
    ClaudesecError,
    ConfigError,
    ExternalServiceError,
    StoreError,
    UsageError,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from claudesec.config import ArchiveConfig, PromptVaultConfig

MAGIC = b"CLAUDESEC-ARCHIVE-1\n"
KEK_NAME = "archive-kek"
_AAD_DOMAIN = "claudesec.archive.v1"

# The KEK classes moved to claudesec.audit.envelope (shared with the prompt vault); they stay
# importable from here.
__all__ = [
    "ArchiveResult",
    "ArchiveRun",
    "ArchiveVerification",
    "KeyEncryptionKey",
    "KmsKek",
    "LocalKek",
    "archive_directory",
    "archive_old_records",
    "kek_from_config",
    "plan_range",
    "upload",
    "upload_archive",
    "verify_archive",
    "write_archive",
]


def kek_from_config(source: str, *, region: str = "", endpoint_url: str = "") -> KeyEncryptionKey:
    """The archive's KEK per ``archive.kek_source``."""
    return envelope.kek_from_config(source, region=region, endpoint_url=endpoint_url, name=KEK_NAME)


# --------------------------------------------------------------------------- the sequence


@dataclass(frozen=True, slots=True)
class ArchiveRun:
    """What ``logs archive`` did: the file written (None: nothing old enough to archive), where
    it was uploaded, and what was pruned after it verified."""

    archive: ArchiveResult | None
    uploaded_key: str = ""
    pruned: int = 0
    pruned_through: int = 0
    prompts_removed: int = 0


def archive_old_records(
    store: AuditStore,
    settings: ArchiveConfig,
    vault: PromptVaultConfig,
    signer: Ed25519PrivateKey,
    *,
    cutoff_ns: int,
    upload: bool = False,
    prune: bool = False,
) -> ArchiveRun:
    """Archive -> upload -> prune, in that order, each step only after the one before it
    succeeded: records leave the store only once a verified archive (and, with ``upload``,
    its off-host copy) holds them. Prompts in the vault go with their records.
    """
    from claudesec.audit.checkpoint import public_key_bytes
    from claudesec.audit.prompt_vault import prune_prompt_vault

    if upload and not settings.s3_bucket:
        raise UsageError("--upload needs archive.s3_bucket")
    kek = kek_from_config(
        settings.kek_source, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )
    planned = plan_range(store, cutoff_ns)
    if planned is None:
        return ArchiveRun(None)
    first, anchor = planned
    result = write_archive(
        store,
        first,
        anchor,
        archive_directory(settings.directory),
        kek,
        signer.sign,
        public_key_bytes(signer),
        compression=settings.compression,
    )
    key = upload_archive(result, settings) if upload else ""
    if not prune:
        return ArchiveRun(result, uploaded_key=key)
    pruned = store.prune(older_than_ns=cutoff_ns)
    if pruned.through_seq != result.last_seq:
        raise ClaudesecError(
            f"prune removed records through {pruned.through_seq}, the archive ends "
            f"at {result.last_seq}",
            hint="archive again to cover the difference",
        )
    removed = prune_prompt_vault(vault, through_seq=pruned.through_seq)
    return ArchiveRun(result, key, pruned.deleted, pruned.through_seq, removed)


def archive_directory(directory: str) -> Path:
    """Where archive files go: ``archive.directory`` (relative to CLAUDESEC_HOME), or
    ``CLAUDESEC_HOME/archive``."""
    from claudesec.paths import ensure_home, home_dir

    if directory:
        path = Path(directory).expanduser()
        return path if path.is_absolute() else home_dir() / path
    return ensure_home() / "archive"


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    path: Path
    first_seq: int
    last_seq: int
    count: int
    sha256: str
    s3_key: str = ""


def plan_range(store: AuditStore, older_than_ns: int) -> tuple[int, Checkpoint] | None:
    """``(first seq, anchor checkpoint)`` of what ``prune(older_than_ns)`` would remove now."""
    checkpoints = store.checkpoints()
    with store.snapshot() as conn:
        first_kept_row = conn.execute(
            "SELECT min(seq) FROM events WHERE time_ns >= ?", (older_than_ns,)
        ).fetchone()
    head = store.head().seq
    # Where a signed prune left off, as prune itself reads it (never the unsigned meta marker).
    pruned_through = store.pruned_through()
    first_kept = first_kept_row[0] if first_kept_row[0] is not None else head + 1
    anchors = [cp for cp in checkpoints if pruned_through < cp.seq < first_kept]
    if not anchors:
        return None
    return pruned_through + 1, anchors[-1]


def write_archive(
    store: AuditStore,
    first_seq: int,
    anchor: Checkpoint,
    directory: Path,
    kek: KeyEncryptionKey,
    sign: Callable[[bytes], bytes],
    public_key: bytes,
    *,
    compression: str = "lzma",
) -> ArchiveResult:
    """Write records ``first_seq..anchor.seq`` to a new archive file and check it reads back."""
    last_seq = anchor.seq
    with store.snapshot() as conn:
        rows = conn.execute(
            "SELECT seq, prev_hash, rec_hash, body FROM events WHERE seq BETWEEN ? AND ? "
            "ORDER BY seq",
            (first_seq, last_seq),
        ).fetchall()
    if (
        not rows
        or rows[0][0] != first_seq
        or rows[-1][0] != last_seq
        or (len(rows) != last_seq - first_seq + 1)
    ):
        raise StoreError(f"records {first_seq}..{last_seq} are not all in the store")
    plaintext = "".join(
        canonical_dumps(
            {"seq": seq, "prev_hash": bytes(prev).hex(), "rec_hash": bytes(rec).hex(), "body": body}
        )
        + "\n"
        for seq, prev, rec, body in rows
    ).encode("utf-8")
    store_id = anchor.store_id.hex()
    context = f"{store_id}:{first_seq}-{last_seq}"
    data_key, wrapped = kek.new_data_key(context)
    compressed = _compress(plaintext, compression)
    nonce, ciphertext = envelope.encrypt(data_key, compressed, _aad(context))
    manifest = {
        "format": 1,
        "store_id": store_id,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "count": len(rows),
        "first_prev_hash": bytes(rows[0][1]).hex(),
        "last_rec_hash": bytes(rows[-1][2]).hex(),
        "checkpoint": anchor.to_export(),
        "created_ns": time.time_ns(),
        "compression": compression,
        "cipher": "AES-256-GCM",
        "nonce": nonce.hex(),
        "encryption": wrapped,
        "ciphertext_sha256": hashlib.sha256(ciphertext).hexdigest(),
        "plaintext_sha256": hashlib.sha256(plaintext).hexdigest(),
        "public_key": public_key.hex(),
    }
    manifest_bytes = canonical_dumps(manifest).encode("utf-8")
    signature = sign(manifest_bytes)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"claudesec-{store_id[:12]}-{first_seq:012d}-{last_seq:012d}.csarc"
    path = directory / name
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(MAGIC + manifest_bytes + b"\n" + signature.hex().encode() + b"\n")
            handle.write(ciphertext)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    check = verify_archive(path, kek=kek, public_key=public_key)
    if not check.ok:
        raise StoreError(f"the archive {path} did not verify: {'; '.join(check.problems)}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ArchiveResult(path, first_seq, last_seq, len(rows), digest)


def upload(
    result: ArchiveResult,
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    lock_mode: str = "",
    lock_days: int = 0,
) -> str:
    """Put the archive in S3, under Object Lock when asked; returns its key."""
    from datetime import UTC, datetime, timedelta

    from botocore.exceptions import BotoCoreError, ClientError

    key = prefix + result.path.name
    extra: dict[str, Any] = {}
    if lock_mode:
        extra["ObjectLockMode"] = lock_mode
        extra["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=max(1, lock_days))
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=result.path.read_bytes(), **extra)
    except (BotoCoreError, ClientError) as exc:
        raise ExternalServiceError(f"archive upload to s3://{bucket}/{key} failed: {exc}") from exc
    return key


def upload_archive(result: ArchiveResult, settings: ArchiveConfig) -> str:
    """Upload per the ``[archive]`` settings (bucket, prefix, Object Lock)."""
    import boto3

    s3 = boto3.client(
        "s3",
        region_name=settings.aws_region or None,
        endpoint_url=settings.aws_endpoint_url or None,
    )
    return upload(
        result,
        s3,
        settings.s3_bucket,
        settings.s3_prefix,
        lock_mode=settings.object_lock_mode,
        lock_days=settings.object_lock_days,
    )


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True, slots=True)
class ArchiveVerification:
    path: Path
    ok: bool
    problems: tuple[str, ...]
    manifest: dict[str, Any] = field(default_factory=dict)
    decrypted: bool = False
    records: int = 0


def verify_archive(
    path: Path,
    *,
    kek: KeyEncryptionKey | None = None,
    public_key: bytes | None = None,
) -> ArchiveVerification:
    """Check an archive: signature and ciphertext always; with ``kek``, the whole chain.

    ``public_key`` pins the signer (``logs public-key`` of the store); without it the key in
    the manifest is used, which proves integrity but not who wrote the file.
    """
    problems: list[str] = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not raw.startswith(MAGIC):
        return ArchiveVerification(path, False, ("not a claudesec archive",))
    rest = raw[len(MAGIC) :]
    try:
        manifest_bytes, signature_hex, ciphertext = rest.split(b"\n", 2)
        manifest = json.loads(manifest_bytes)
        signature = bytes.fromhex(signature_hex.decode())
        signer = bytes.fromhex(manifest["public_key"])
    except (ValueError, KeyError, UnicodeDecodeError):
        return ArchiveVerification(path, False, ("damaged archive header",))
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if public_key is not None and public_key != signer:
        problems.append("signed by a different key than the one given")
    try:
        Ed25519PublicKey.from_public_bytes(public_key or signer).verify(signature, manifest_bytes)
    except (InvalidSignature, ValueError):
        problems.append("manifest signature is invalid")
    if hashlib.sha256(ciphertext).hexdigest() != manifest.get("ciphertext_sha256"):
        problems.append("ciphertext does not match the manifest (modified or truncated)")
    checkpoint = None
    try:
        checkpoint = Checkpoint.from_export(manifest["checkpoint"], source="archive manifest")
        if not checkpoint.signature_valid(public_key or signer):
            problems.append("the anchoring checkpoint's signature is invalid")
    except (ClaudesecError, KeyError, ValueError):
        problems.append("the manifest's checkpoint is unreadable")
    if kek is None or problems:
        return ArchiveVerification(path, not problems, tuple(problems), manifest)
    records = _check_contents(manifest, ciphertext, kek, checkpoint, problems)
    return ArchiveVerification(path, not problems, tuple(problems), manifest, True, records)


def _check_contents(
    manifest: dict[str, Any],
    ciphertext: bytes,
    kek: KeyEncryptionKey,
    checkpoint: Checkpoint | None,
    problems: list[str],
) -> int:
    first, last = int(manifest["first_seq"]), int(manifest["last_seq"])
    context = f"{manifest['store_id']}:{first}-{last}"
    data_key = kek.unwrap(manifest["encryption"], context)
    compressed = envelope.decrypt(
        data_key, bytes.fromhex(manifest["nonce"]), ciphertext, _aad(context)
    )
    if compressed is None:
        problems.append("decryption failed: wrong key or tampered ciphertext")
        return 0
    plaintext = _decompress(compressed, str(manifest["compression"]))
    if hashlib.sha256(plaintext).hexdigest() != manifest.get("plaintext_sha256"):
        problems.append("decrypted records do not match the manifest")
    prev = bytes.fromhex(manifest["first_prev_hash"])
    expected = first
    count = 0
    for line in plaintext.decode("utf-8").splitlines():
        record = json.loads(line)
        seq = int(record["seq"])
        if seq != expected:
            problems.append(f"record {expected} is missing (found {seq})")
            break
        if bytes.fromhex(record["prev_hash"]) != prev:
            problems.append(f"record {seq} is not chained to record {seq - 1}")
            break
        digest = record_hash(prev, seq, record["body"].encode("utf-8"))
        if digest.hex() != record["rec_hash"]:
            problems.append(f"record {seq} was modified")
            break
        prev = digest
        expected += 1
        count += 1
    if not problems:
        if count != int(manifest["count"]) or expected - 1 != last:
            problems.append("the archive holds fewer records than its manifest says")
        elif checkpoint is not None and (checkpoint.seq != last or checkpoint.rec_hash != prev):
            problems.append("the last record does not match the anchoring checkpoint")
    return count


def _aad(context: str) -> bytes:
    # Binds the ciphertext to its store and range: a ciphertext moved into another
    # archive's file fails authentication.
    return f"{_AAD_DOMAIN}:{context}".encode()


def _compress(data: bytes, method: str) -> bytes:
    if method == "lzma":
        return lzma.compress(data, preset=6)
    if method == "zlib":
        return zlib.compress(data, 9)
    raise ConfigError(f"archive.compression must be lzma or zlib, got {method!r}")


def _decompress(data: bytes, method: str) -> bytes:
    return lzma.decompress(data) if method == "lzma" else zlib.decompress(data)

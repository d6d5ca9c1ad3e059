"""Encrypted, signed archives: local KEK and moto KMS, tamper detection, prune and upload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.archive import (
    KmsKek,
    LocalKek,
    plan_range,
    upload,
    verify_archive,
    write_archive,
)
from claudesec.audit.checkpoint import public_key_bytes
from claudesec.audit.secrets import AuditKeys
from tests.audit.export.helpers import register_commands, write_config
from tests.audit.helpers import BASE_NS, DAY_NS, build, event
from tests.fixtures.cli import RunCli


def archived(tmp_path: Path, kek: Any, n: int = 35) -> tuple[Any, Any]:
    store = build(tmp_path / "audit.db", n)
    signer = AuditKeys(tmp_path).signing_key()
    first, anchor = plan_range(store, BASE_NS + DAY_NS)  # type: ignore[misc]
    result = write_archive(
        store, first, anchor, tmp_path / "archive", kek, signer.sign, public_key_bytes(signer)
    )
    return store, result


def test_local_kek_archive_round_trips_and_verifies_the_chain(tmp_path: Path) -> None:
    kek = LocalKek.load("file", tmp_path)
    store, result = archived(tmp_path, kek)
    assert (result.first_seq, result.last_seq, result.count) == (1, 30, 30)
    assert oct(result.path.stat().st_mode & 0o777) == "0o600"
    check = verify_archive(result.path, kek=kek, public_key=store.public_key())
    assert check.ok and check.decrypted and check.records == 30
    assert b"user1" not in result.path.read_bytes()  # encrypted, not merely compressed
    assert oct((tmp_path / "archive-kek.key").stat().st_mode & 0o777) == "0o600"


def test_tampering_and_wrong_keys_are_detected(tmp_path: Path) -> None:
    kek = LocalKek.load("file", tmp_path)
    _store, result = archived(tmp_path, kek)
    data = bytearray(result.path.read_bytes())
    data[-5] ^= 1
    result.path.write_bytes(bytes(data))
    bad = verify_archive(result.path, kek=kek)
    assert not bad.ok and "ciphertext does not match" in bad.problems[0]

    _, fresh = archived(tmp_path / "other", kek)
    text = fresh.path.read_bytes().replace(b'"last_seq":30', b'"last_seq":31', 1)
    fresh.path.write_bytes(text)
    assert "manifest signature is invalid" in verify_archive(fresh.path).problems

    _, third = archived(tmp_path / "third", kek)
    stranger = AuditKeys(tmp_path / "stranger").signing_key()
    pinned = verify_archive(third.path, public_key=public_key_bytes(stranger))
    assert not pinned.ok
    with pytest.raises(Exception, match="encrypted under"):
        verify_archive(third.path, kek=LocalKek(b"\x01" * 32))


def test_kms_envelope_encryption_with_moto(tmp_path: Path, aws_client: Any) -> None:
    kms = aws_client("kms")
    key_id = kms.create_key(Description="claudesec archive test")["KeyMetadata"]["KeyId"]
    kek = KmsKek(key_id, kms)
    _store, result = archived(tmp_path, kek)
    manifest = verify_archive(result.path).manifest
    assert manifest["encryption"]["kek"].startswith("kms:")
    assert verify_archive(result.path, kek=kek).records == 30


def test_upload_with_object_lock(tmp_path: Path, aws_client: Any) -> None:
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
    _, result = archived(tmp_path, LocalKek.load("file", tmp_path))
    key = upload(result, s3, "vault", "arch/", lock_mode="COMPLIANCE", lock_days=7)
    head = s3.head_object(Bucket="vault", Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ContentLength"] == result.path.stat().st_size


def test_cli_archive_prune_and_verify(tmp_path: Path, run_cli: RunCli) -> None:
    register_commands()
    write_config(
        Path.cwd(),
        f"""
[audit]
store_path = "{tmp_path / "audit.db"}"
checkpoint_every = 10
""",
    )
    from claudesec.audit import AuditStore
    from claudesec.config import AuditConfig

    home_keys = AuditKeys.from_config(AuditConfig())
    with AuditStore.open(tmp_path / "audit.db", checkpoint_every=10, keys=home_keys) as s:
        s.append_many(event(i, time_ns=BASE_NS + i) for i in range(1, 26))
    result = run_cli("logs", "archive", "--older-than", "1d", "--prune")
    assert result.exit_code == 0, result.output
    assert "archived records 1..20 (20)" in result.stdout
    assert "pruned 20 records through 20" in result.stdout
    [path] = (Path.home() / ".claudesec" / "archive").glob("*.csarc")
    ok = run_cli("logs", "archive", "verify", str(path), "--format", "json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["records"] == 20
    via_verify = run_cli("logs", "verify", "--archive", str(path), "--format", "json")
    assert via_verify.exit_code == 0 and json.loads(via_verify.stdout)["records"] == 20
    path.write_bytes(path.read_bytes()[:-3])
    damaged = run_cli("logs", "archive", "verify", str(path), "--format", "table")
    assert damaged.exit_code == 1 and "DAMAGED" in damaged.stdout
    assert run_cli("logs", "verify", "--archive", str(path)).exit_code == 1

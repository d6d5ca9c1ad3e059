"""The prompt-hash key and the checkpoint signing key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.secrets import AuditKeys, prompt_hash
from claudesec.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_keys_are_created_once_as_0600_files(tmp_path: Path) -> None:
    keys = AuditKeys(tmp_path / "home")
    first = keys.prompt_key()
    assert len(first) == 32
    assert AuditKeys(tmp_path / "home").prompt_key() == first
    keys.signing_key()
    for path in (tmp_path / "home").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_prompt_hash_is_a_keyed_hmac_not_a_plain_hash(tmp_path: Path) -> None:
    import hashlib

    key = AuditKeys(tmp_path).prompt_key()
    digest = prompt_hash("hello", key=key)
    assert digest == prompt_hash(b"hello", key=key)
    assert len(digest) == 64
    assert digest != hashlib.sha256(b"hello").hexdigest()
    assert digest != prompt_hash("hello", key=b"\0" * 32)
    assert "hello" not in digest


def test_prompt_hash_without_a_key_uses_the_installation_key(claudesec_home: Path) -> None:
    digest = prompt_hash("same prompt")
    assert digest == prompt_hash("same prompt")
    assert (claudesec_home / "audit-prompt-hmac.key").exists()


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from claudesec.audit.secrets import AuditKeys;"
        "print(AuditKeys(Path(sys.argv[1])).prompt_key().hex())"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "k")],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(outputs) == 1
    assert not [p for p in (tmp_path / "k").iterdir() if p.name.endswith(".tmp")]


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    keys = AuditKeys(tmp_path)
    keys.prompt_key()
    path = tmp_path / "audit-prompt-hmac.key"
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        AuditKeys(tmp_path).prompt_key()


def test_a_malformed_key_is_reported_without_its_content(tmp_path: Path) -> None:
    path = tmp_path / "audit-prompt-hmac.key"
    path.write_text("not-hex-secret-material\n")
    path.chmod(0o600)
    with pytest.raises(Exception, match="malformed") as caught:
        AuditKeys(tmp_path).prompt_key()
    assert "secret-material" not in str(caught.value)


def test_keyring_backend_keeps_keys_in_the_keyring(file_keyring: Any, tmp_path: Path) -> None:
    keys = AuditKeys(tmp_path, "keyring")
    key = keys.prompt_key()
    signing = keys.signing_key()
    assert AuditKeys(tmp_path, "keyring").prompt_key() == key
    assert file_keyring.get_password("claudesec", "audit-prompt-hmac") == key.hex()
    assert list(tmp_path.iterdir()) == []
    assert keys.existing_public_key() is None  # verify never touches the keyring
    assert signing.public_key() is not None

"""What consumers use: ``current_key(name)`` and ``claudesec keys exec NAME -- CMD``."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from claudesec.anthropic_admin import AdminClient, probe_key
from claudesec.config import Config, KeysConfig
from claudesec.keys import clear_cache, current_key
from claudesec.keys.events import MemorySink
from claudesec.keys.rotation import KeyManager, Settings
from claudesec.stores.keyring_store import KeyringStore
from tests.fixtures.cli import RunCli
from tests.keys.conftest import Rig

# The child proves it got the key without ever printing it: it compares digests.
CHECK = (
    "import hashlib, os, sys\n"
    "var = sys.argv[1]\n"
    "got = hashlib.sha256(os.environ.get(var, '').encode()).hexdigest()\n"
    "leaked = 'ANTHROPIC_ADMIN_KEY' in os.environ\n"
    "sys.exit(0 if got == os.environ['EXPECTED_SHA256'] and not leaked else 7)\n"
)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def _sm_config(rig: Rig) -> Config:
    return Config(
        keys=KeysConfig(aws_region="us-east-1", aws_endpoint_url=rig.endpoint, aws_max_attempts=1)
    )


def test_current_key_reads_awscurrent_and_caches_for_the_ttl(rig: Rig) -> None:
    old = rig.managed("app")
    (spare,) = rig.spares(1)
    config = _sm_config(rig)
    assert current_key("app", config) == old.secret

    rig.manager.rotate(["app"], force=True)

    # Inside the TTL the cached (still valid: overlap window) key is served ...
    assert current_key("app", config) == old.secret
    # ... a forced re-read (what a consumer does on a 401) gets the new one and refreshes.
    assert current_key("app", config, ttl_s=0) == spare.secret
    assert current_key("claudesec/app", config) == spare.secret


def test_current_key_never_returns_a_pending_key(rig: Rig) -> None:
    old = rig.managed("app")
    rig.spares(1)
    # testSecret fails: the spare sits at AWSPENDING, the newest version of the secret.
    rig.emulator.state.inject_fault("server_error", path_prefix="/v1/models")
    assert rig.manager.rotate(["app"], force=True).results[0].outcome == "failed"
    assert any("AWSPENDING" in s for s in rig.stages().values())

    assert current_key("app", _sm_config(rig), ttl_s=0) == old.secret


def test_current_key_from_the_keyring_store(rig: Rig, file_keyring: Any) -> None:
    manager = KeyManager(
        KeyringStore(),
        Settings(test_attempts=1, test_delay_s=0.0),
        admin=AdminClient(rig.emulator.base_url, rig.admin_key.secret, max_retries=0),
        probe=partial(probe_key, rig.emulator.base_url, timeout_s=5),
        sink=MemorySink(),
    )
    old, spare = rig.new_key(), rig.new_key()
    manager.add("laptop", old.secret)
    manager.pool_add(spare.secret)
    config = Config(keys=KeysConfig(store="keyring"))
    assert current_key("laptop", config) == old.secret

    manager.rotate(["laptop"], force=True)
    assert current_key("laptop", config, ttl_s=0) == spare.secret


def _expect(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("EXPECTED_SHA256", hashlib.sha256(key.encode()).hexdigest())


def test_keys_exec_hands_the_current_key_to_the_command_only_through_its_env(
    rig: Rig, keys_config: Path, run_subprocess: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = rig.managed("app")
    _expect(monkeypatch, old.secret)

    result = run_subprocess(
        "keys", "exec", "app", "--", sys.executable, "-c", CHECK, "ANTHROPIC_API_KEY"
    )

    assert result.exit_code == 0, result.output
    assert old.secret not in result.output
    assert rig.admin_key.secret not in result.output


def test_keys_exec_passes_the_exit_code_through_and_honours_env(
    rig: Rig, keys_config: Path, run_subprocess: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = rig.managed("app")
    _expect(monkeypatch, "not the key")  # the child must notice the mismatch: exit 7
    wrong = run_subprocess(
        "keys", "exec", "app", "--", sys.executable, "-c", CHECK, "ANTHROPIC_API_KEY"
    )
    assert wrong.exit_code == 7, wrong.output

    _expect(monkeypatch, old.secret)
    other = run_subprocess(
        "keys", "exec", "app", "--env", "MY_KEY", "--", sys.executable, "-c", CHECK, "MY_KEY"
    )
    assert other.exit_code == 0, other.output
    assert old.secret not in wrong.output + other.output


def test_keys_exec_usage_errors(
    rig: Rig, keys_config: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    rig.managed("app")
    assert run_cli("keys", "exec", "app").exit_code == 2
    assert run_cli("keys", "exec", "app", "--env", "1BAD", "--", "true").exit_code == 2
    missing = run_cli("keys", "exec", "app", "--", "no-such-command-claudesec")
    assert missing.exit_code == 127 and "command not found" in missing.stderr
    not_executable = tmp_path / "not-executable.sh"
    not_executable.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    not_executable.chmod(0o644)
    denied = run_cli("keys", "exec", "app", "--", str(not_executable))
    assert denied.exit_code == 126 and "not executable" in denied.stderr
    assert run_cli("keys", "exec", "nope", "--", "true").exit_code == 2

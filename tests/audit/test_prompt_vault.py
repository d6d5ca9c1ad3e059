"""The prompt vault: envelope-encrypted prompt text beside the audit store, never inside it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.envelope import KmsKek, LocalKek
from claudesec.audit.prompt_vault import (
    ACCESS_EVENT,
    PromptVault,
    default_vault_path,
    open_prompt,
    prune_prompt_vault,
)
from claudesec.audit.store import AuditStore
from claudesec.config import PromptVaultConfig
from claudesec.errors import StoreError, UsageError
from claudesec.guard.dlp import placeholder
from claudesec.guard.pipeline import ApiRequest, AuditPipeline, Caller, Outcome
from tests.audit.export.helpers import register_commands, write_config
from tests.audit.helpers import BASE_NS, DAY_NS, event, open_store
from tests.fixtures.cli import RunCli
from tests.fixtures.keys import KeyFactory
from tests.guard.test_pipeline import audit_config, message_body, records

MARKER = "quarterly numbers for the zebra project"


def vault_at(tmp_path: Path, **kwargs: Any) -> PromptVault:
    kek = kwargs.pop("kek", None) or LocalKek.load("file", tmp_path, "prompt-vault-kek")
    return PromptVault.open(tmp_path / "vault.db", kek=kek, **kwargs)


def stored(store: AuditStore, vault: PromptVault, n: int) -> list[int]:
    seqs = []
    for i in range(1, n + 1):
        record = store.append(event(i))
        vault.store_prompt(
            record.seq,
            record.rec_hash,
            message_body(f"{MARKER} #{i}"),
            request_id=f"req_{i}",
            time_ns=BASE_NS + i,
        )
        seqs.append(record.seq)
    return seqs


def test_prompt_round_trips_and_each_access_is_recorded(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db") as store, vault_at(tmp_path) as vault:
        [first, second] = stored(store, vault, 2)
        prompt = open_prompt(store, vault, second, reader="auditor")
        assert prompt.body == message_body(f"{MARKER} #2")
        assert (prompt.seq, prompt.request_id) == (second, "req_2")
        access = records(store)[-1]
        assert (access.type, access.user, access.extra["prompt_seq"]) == (
            ACCESS_EVENT,
            "auditor",
            second,
        )
        assert first not in (e.extra.get("prompt_seq") for e in records(store))


def test_no_plaintext_on_disk_and_the_file_is_0600(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db") as store, vault_at(tmp_path) as vault:
        stored(store, vault, 3)
    for path in tmp_path.glob("vault.db*"):
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
        assert b"zebra" not in path.read_bytes()
    for path in tmp_path.glob("audit.db*"):
        assert b"zebra" not in path.read_bytes()


def test_a_ciphertext_moved_to_another_row_does_not_open(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db") as store, vault_at(tmp_path) as vault:
        first, second = stored(store, vault, 2)
    with sqlite3.connect(tmp_path / "vault.db") as conn:
        row = conn.execute(
            "SELECT nonce, ciphertext FROM prompts WHERE seq = ?", (first,)
        ).fetchone()
        conn.execute("UPDATE prompts SET nonce = ?, ciphertext = ? WHERE seq = ?", (*row, second))
    with vault_at(tmp_path) as vault, pytest.raises(StoreError, match="does not decrypt"):
        vault.read_prompt(second)


def test_a_vault_from_another_store_is_refused(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db") as store, vault_at(tmp_path) as vault:
        stored(store, vault, 1)
        with open_store(tmp_path / "other" / "audit.db") as other:
            other.append(event(99))
            with pytest.raises(UsageError, match="does not belong"):
                open_prompt(other, vault, 1, reader="auditor")
            assert [e.type for e in records(other)] == ["call"]


def test_the_wrong_kek_cannot_read(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db") as store, vault_at(tmp_path) as vault:
        stored(store, vault, 1)
    with (
        vault_at(tmp_path, kek=LocalKek(b"\x02" * 32)) as stranger,
        pytest.raises(UsageError, match="encrypted under"),
    ):
        stranger.read_prompt(1)
    with PromptVault.open(tmp_path / "vault.db") as keyless, pytest.raises(UsageError):
        keyless.read_prompt(1)


def test_a_data_key_seals_a_bounded_number_of_prompts(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db") as store, vault_at(tmp_path, data_key_uses=2) as vault:
        stored(store, vault, 5)
        assert [vault.read_prompt(s).body["messages"][0]["content"][-2:] for s in (1, 5)] == [
            "#1",
            "#5",
        ]
    with sqlite3.connect(tmp_path / "vault.db") as conn:
        keys = {row[0] for row in conn.execute("SELECT wrapped_key FROM prompts")}
    assert len(keys) == 3


def test_a_second_prompt_for_one_record_is_refused(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db") as store, vault_at(tmp_path) as vault:
        [seq] = stored(store, vault, 1)
        with pytest.raises(StoreError, match="already holds"):
            vault.store_prompt(seq, "00", {"messages": []})


def test_kms_data_keys_with_moto(tmp_path: Path, aws_client: Any) -> None:
    kms = aws_client("kms")
    key_id = kms.create_key(Description="claudesec prompt vault test")["KeyMetadata"]["KeyId"]
    with (
        open_store(tmp_path / "audit.db") as store,
        vault_at(tmp_path, kek=KmsKek(key_id, kms)) as v,
    ):
        stored(store, v, 2)
        assert open_prompt(store, v, 2, reader="auditor").body == message_body(f"{MARKER} #2")
    with sqlite3.connect(tmp_path / "vault.db") as conn:
        keks = {row[0] for row in conn.execute("SELECT kek FROM prompts")}
    assert len(keks) == 1 and keks.pop().startswith("kms:")


def test_prune_follows_the_audit_prune_and_its_own_retention(tmp_path: Path) -> None:
    settings = PromptVaultConfig(path=str(tmp_path / "vault.db"), retention_days=2)
    assert prune_prompt_vault(settings, through_seq=10) == 0
    assert not (tmp_path / "vault.db").exists()
    with open_store(tmp_path / "audit.db") as store, vault_at(tmp_path) as vault:
        stored(store, vault, 6)
    # Records 1-2 went with `logs prune`; 3 is past the vault's own 2-day retention.
    with sqlite3.connect(tmp_path / "vault.db") as conn:
        conn.execute("UPDATE prompts SET time_ns = ? WHERE seq = 3", (BASE_NS - 5 * DAY_NS,))
    assert prune_prompt_vault(settings, through_seq=2, now_ns=BASE_NS + DAY_NS) == 3
    with PromptVault.open(tmp_path / "vault.db") as vault:
        assert vault.count() == 3
        assert vault.rec_hash_of(3) is None and vault.rec_hash_of(4) is not None


def test_pipeline_hook_stores_the_body_as_sent_never_the_redacted_secret(
    tmp_path: Path, fake_keys: KeyFactory
) -> None:
    """The pipeline's ``finish`` seals ``admission.body`` (as sent) under the record it wrote."""
    key = fake_keys.anthropic_api().value
    with open_store(tmp_path / "audit.db") as store, vault_at(tmp_path) as vault:
        pipeline = AuditPipeline.from_config(audit_config(), store=store)
        pipeline.prompt_vault = vault
        admission = pipeline.admit(
            Caller("bob"), ApiRequest("POST", "/v1/messages", message_body(f"{MARKER} {key}"))
        )
        record = pipeline.finish(admission, Outcome(status=200, request_id="req_x"))
        assert record is not None
        body = open_prompt(store, vault, record.seq, reader="auditor").body
        text = body["messages"][0]["content"]
        assert placeholder("anthropic-api-key") in text and key not in json.dumps(body)
        assert MARKER in text
        assert all(MARKER not in json.dumps(e.to_dict()) for e in records(store))


def test_cli_logs_prompt_decrypts_one_and_records_the_access(
    tmp_path: Path, run_cli: RunCli
) -> None:
    register_commands()
    write_config(
        Path.cwd(),
        f"""
[audit]
store_path = "{tmp_path / "audit.db"}"

[prompt_vault]
enabled = true
path = "{tmp_path / "vault.db"}"
""",
    )
    from claudesec.audit.secrets import AuditKeys
    from claudesec.config import AuditConfig

    settings = replace(PromptVaultConfig(), path=str(tmp_path / "vault.db"))
    assert default_vault_path(settings) == tmp_path / "vault.db"
    with (
        AuditStore.open(tmp_path / "audit.db", keys=AuditKeys.from_config(AuditConfig())) as s,
        PromptVault.from_config(settings) as vault,
    ):
        stored(s, vault, 2)
    result = run_cli("logs", "prompt", "2", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["body"] == message_body(f"{MARKER} #2")
    text = run_cli("logs", "prompt", "1", "--format", "text")
    assert text.exit_code == 0 and f"[user] {MARKER} #1" in text.stdout
    missing = run_cli("logs", "prompt", "7")
    assert missing.exit_code == 2
    with AuditStore.open(tmp_path / "audit.db", readonly=True) as s:
        accesses = [e for e in records(s) if e.type == ACCESS_EVENT]
    assert [e.extra["prompt_seq"] for e in accesses] == [2, 1]


def test_archive_prune_takes_the_pruned_records_prompts_along(
    tmp_path: Path, run_cli: RunCli
) -> None:
    register_commands()
    write_config(
        Path.cwd(),
        f"""
[audit]
store_path = "{tmp_path / "audit.db"}"
checkpoint_every = 10

[prompt_vault]
enabled = true
path = "{tmp_path / "vault.db"}"
""",
    )
    from claudesec.audit.secrets import AuditKeys
    from claudesec.config import AuditConfig

    settings = replace(PromptVaultConfig(), path=str(tmp_path / "vault.db"))
    keys = AuditKeys.from_config(AuditConfig())
    with (
        AuditStore.open(tmp_path / "audit.db", checkpoint_every=10, keys=keys) as s,
        PromptVault.from_config(settings) as vault,
    ):
        for i in range(1, 26):
            record = s.append(event(i, time_ns=BASE_NS + i))
            vault.store_prompt(record.seq, record.rec_hash, message_body(f"#{i}"))
    result = run_cli("logs", "archive", "--older-than", "1d", "--prune")
    assert result.exit_code == 0, result.output
    assert "removed 20 prompts from the prompt vault" in result.stdout
    with PromptVault.open(tmp_path / "vault.db") as vault:
        assert vault.count() == 5 and vault.rec_hash_of(20) is None


def test_a_pipeline_built_from_config_with_the_vault_on_stores_every_sent_prompt(
    tmp_path: Path,
) -> None:
    config = replace(
        audit_config(),
        prompt_vault=replace(PromptVaultConfig(), enabled=True, path=str(tmp_path / "vault.db")),
    )
    with open_store(tmp_path / "audit.db") as store:
        pipeline = AuditPipeline.from_config(config, store=store)
        try:
            admission = pipeline.admit(
                Caller("bob"), ApiRequest("POST", "/v1/messages", message_body(f"{MARKER} one"))
            )
            record = pipeline.finish(admission, Outcome(status=200, request_id="req_1"))
        finally:
            pipeline.close()
        assert record is not None
        with PromptVault.from_config(config.prompt_vault) as vault:
            body = open_prompt(store, vault, record.seq, reader="auditor").body
    assert body["messages"][0]["content"] == f"{MARKER} one"
    assert MARKER.encode() not in (tmp_path / "vault.db").read_bytes()

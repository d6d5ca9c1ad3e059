"""DLP against the ways a value slips by: a key pair half redacted, invisible characters and
split keys (``[dlp] normalize``), and allowlists that must let the client's own fixed values
through without opening a hole for everything else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.store import AuditStore
from claudesec.config import AuditConfig, Config, DlpConfig, PolicyConfig, RoleConfig, load_config
from claudesec.errors import ConfigError
from claudesec.guard.dlp import DlpScanner, placeholder
from claudesec.guard.pipeline import CallDenied
from claudesec.scan.reports import get_format
from tests.fixtures.keys import KeyFactory
from tests.guard.test_pipeline import open_store, records

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
CLIENT_ADDRESS = "noreply" + "@" + "client.example"  # what a client's system prompt carries
USER_ADDRESS = "rita" + "@" + "customer.example"  # what a user pastes


# --------------------------------------------------------------------------- AWS pairs


@pytest.mark.parametrize("backend", ["hyperscan", "python"])
@pytest.mark.parametrize(
    "layout",
    [
        "aws_access_key_id = {kid}\naws_secret_access_key = {secret}\n",
        '{{"AccessKeyId": "{kid}", "SecretAccessKey": "{secret}"}}',
        "export AWS_ACCESS_KEY_ID={kid} AWS_SECRET_ACCESS_KEY={secret}",
    ],
)
def test_a_redacted_aws_key_pair_loses_both_parts(
    backend: str, layout: str, fake_keys: KeyFactory
) -> None:
    key_id, secret = fake_keys.aws_pair()
    text = layout.format(kid=key_id.value, secret=secret.value)
    redacted, report = DlpScanner(backend=backend).redact(text)  # type: ignore[arg-type]
    assert key_id.value not in redacted
    assert secret.value not in redacted
    # One credential: counted once as a pair (or as its two named halves where the pair
    # shape does not fit), and both halves replaced.
    assert report.total in (1, 2)
    assert redacted.count("[REDACTED:aws-") == 2


def test_a_key_pair_split_across_two_parts_of_a_request_loses_both(fake_keys: KeyFactory) -> None:
    key_id, secret = fake_keys.aws_pair()
    scanner = DlpScanner()
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": f"id {key_id.value}"},
            {"role": "user", "content": f"secret {secret.value}"},
        ],
    }
    inspection = scanner.inspect_request("/v1/messages", body)
    sent = json.dumps(inspection.redacted(body))
    assert key_id.value not in sent and secret.value not in sent
    assert inspection.report.counts == {"aws-credentials": 1}


def test_scan_reports_never_show_either_part_of_a_pair(
    tmp_path: Path, fake_keys: KeyFactory
) -> None:
    from claudesec.scan.command import ScanOptions, run_scan

    key_id, secret = fake_keys.aws_pair()
    (tmp_path / "creds.ini").write_text(
        f"aws_access_key_id = {key_id.value}\naws_secret_access_key = {secret.value}\n"
    )
    result, _ = run_scan(ScanOptions(targets=(str(tmp_path),), no_git=True))
    assert {f.rule_id for f in result.findings} == {"aws-credentials"}
    for name in ("text", "json", "sarif"):
        out = get_format(name).render(result)
        assert key_id.value not in out and secret.value not in out, name


# --------------------------------------------------------------------------- normalisation


@pytest.fixture(scope="module")
def normalizing() -> DlpScanner:
    return DlpScanner(normalize=True)


@pytest.mark.parametrize("mark", ZERO_WIDTH, ids=[f"U+{ord(c):04X}" for c in ZERO_WIDTH])
def test_zero_width_characters_inside_a_key_are_seen_through(
    normalizing: DlpScanner, mark: str, fake_keys: KeyFactory
) -> None:
    key = fake_keys.anthropic_api().value
    hidden = mark.join([key[:10], key[10:40], key[40:70], key[70:]])
    text = f"use {hidden} please"
    assert not DlpScanner().scan(text)  # the evasion works without normalisation
    redacted, report = normalizing.redact(text)
    assert report.counts == {"anthropic-api-key": 1}
    # Exactly the hidden value went, marks included; the words around it stayed.
    assert redacted == f"use {placeholder('anthropic-api-key')} please"


@pytest.mark.parametrize("gap", [" ", "\n", "\r\n", "  \n  ", "\t"])
def test_a_key_split_by_whitespace_is_found_and_removed_whole(
    normalizing: DlpScanner, gap: str, fake_keys: KeyFactory
) -> None:
    key = fake_keys.github_classic().value
    text = f"token:\n{key[:14]}{gap}{key[14:]}\nthanks"
    assert not DlpScanner().scan(text)
    redacted, report = normalizing.redact(text)
    assert report.counts == {"github-token": 1}
    assert key[:14] not in redacted and key[14:] not in redacted
    assert redacted.startswith("token:\n") and redacted.endswith("\nthanks")


def test_a_pem_key_and_an_email_with_invisible_marks_are_both_caught(
    normalizing: DlpScanner, fake_keys: KeyFactory
) -> None:
    key = fake_keys.openai().value
    email = "alice" + "\u200b@" + "example.org"
    text = f"{key[:8]}\u00ad{key[8:]} and {email}"
    redacted, report = normalizing.redact(text)
    assert report.counts == {"openai-api-key": 1, "email": 1}
    assert "\u200b" not in redacted and "example.org" not in redacted


def test_normalisation_leaves_ordinary_prose_alone(normalizing: DlpScanner) -> None:
    text = "the quick brown fox jumps over the lazy dog\nand then\u200b it sleeps. " * 20
    assert not normalizing.scan(text)


def test_normalize_is_a_config_switch(tmp_path: Path, fake_keys: KeyFactory) -> None:
    (tmp_path / "claudesec.toml").write_text("[dlp]\nnormalize = true\n")
    config = load_config(cwd=tmp_path, environ={}).config
    key = fake_keys.anthropic_api().value
    hidden = key[:20] + "\u200b" + key[20:]
    assert DlpScanner.from_config(config.dlp).scan(hidden)
    assert not DlpScanner.from_config(DlpConfig()).scan(hidden)


# --------------------------------------------------------------------------- allowlists


def _pipeline_config(tmp_path: Path, **role: Any) -> Config:
    roles = {
        "coder": RoleConfig(
            models=("claude-*",), max_tokens=1024, tools_allowed=True, dlp="block", **role
        ),
        "redactor": RoleConfig(models=("claude-*",), max_tokens=1024, dlp="redact", **role),
    }
    return Config(
        policy=PolicyConfig(users={"alice": "coder", "bob": "redactor"}, roles=roles),
        audit=AuditConfig(store_path=str(tmp_path / "audit.db"), sample_rates={}),
    )


def _client_body(user_text: str) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "system": f"You are a coding agent. Report bugs to {CLIENT_ADDRESS}.",
        "messages": [{"role": "user", "content": user_text}],
    }


def _admit(tmp_path: Path, store: AuditStore, config: Config, user: str, body: Any) -> Any:
    from claudesec.guard.pipeline import ApiRequest, AuditPipeline, Caller

    pipeline = AuditPipeline.from_config(config, store=store)
    return pipeline.admit(Caller(user=user), ApiRequest("POST", "/v1/messages", body))


def test_a_role_allowlist_lets_the_clients_own_address_through_and_counts_it(
    tmp_path: Path,
) -> None:
    config = _pipeline_config(tmp_path, dlp_allow_values=(CLIENT_ADDRESS,))
    with open_store(tmp_path / "a.db") as store:
        admission = _admit(tmp_path, store, config, "alice", _client_body("fix my loop"))
        assert not admission.dlp
        assert admission.extra["dlp_allowed_counts"] == {"email": 1}
        # What a user pastes is still blocked, and the allowlisted hit is still counted.
        with pytest.raises(CallDenied) as denied:
            _admit(tmp_path, store, config, "alice", _client_body(f"mail {USER_ADDRESS}"))
        assert denied.value.dlp.counts == {"email": 1}
        [denial] = records(store)
        assert denial.extra["dlp_allowed_counts"] == {"email": 1}


def test_allowlisted_hits_are_recorded_even_when_allowed_calls_are_sampled_out(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from claudesec.guard.pipeline import ApiRequest, AuditPipeline, Caller, Outcome

    config = _pipeline_config(tmp_path, dlp_allow_values=(CLIENT_ADDRESS,))
    config = replace(config, audit=replace(config.audit, sample_rates={"prod": 0.0}))
    with open_store(tmp_path / "a.db") as store:
        pipeline = AuditPipeline.from_config(config, store=store, environment="prod")
        caller = Caller(user="alice")
        plain = pipeline.admit(caller, ApiRequest("POST", "/v1/messages", _client_body("x")))
        pipeline.finish(plain, Outcome(status=200))
        [event] = records(store)
        assert event.extra["dlp_allowed_counts"] == {"email": 1}


def test_without_the_allowlist_the_client_is_blocked_before_the_user_types(
    tmp_path: Path,
) -> None:
    with open_store(tmp_path / "a.db") as store, pytest.raises(CallDenied) as denied:
        _admit(tmp_path, store, _pipeline_config(tmp_path), "alice", _client_body("hello"))
    assert denied.value.reason == "dlp.blocked"


def test_a_global_pattern_allowlist_applies_to_every_role_and_matches_whole_values(
    tmp_path: Path,
) -> None:
    config = _pipeline_config(tmp_path)
    config = Config(
        policy=config.policy,
        audit=config.audit,
        dlp=DlpConfig(allow_patterns=(r"noreply@client\.example",)),
    )
    with open_store(tmp_path / "a.db") as store:
        assert not _admit(tmp_path, store, config, "bob", _client_body("hi")).dlp
        # A value that merely contains the allowed one is not allowed.
        sneaky = "noreply" + "@" + "client.example.attacker.example"
        admission = _admit(tmp_path, store, config, "bob", _client_body(f"to {sneaky}"))
        assert admission.dlp.counts == {"email": 1}
        assert sneaky not in json.dumps(admission.body)
        assert CLIENT_ADDRESS in json.dumps(admission.body)  # allowlisted: left as it was


def test_an_allowlisted_aws_key_id_lets_its_documented_example_pair_through(
    fake_keys: KeyFactory,
) -> None:
    key_id, secret = fake_keys.aws_pair()
    scanner = DlpScanner(allow_values=(key_id.value,))
    text = f"aws_access_key_id = {key_id.value}\naws_secret_access_key = {secret.value}\n"
    allowed: list[Any] = []
    assert scanner.scan_bytes(text.encode(), allowed=allowed) == []
    assert [f.kind for f in allowed] == ["aws-credentials"]


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[dlp]\nallow_patterns = ["(unclosed"]\n', "dlp.allow_patterns"),
        ('[dlp]\nallow_patterns = [".*"]\n', "dlp.allow_patterns"),
        (
            '[policy.roles.coder]\ndlp_allow_patterns = ["a[b"]\n',
            "policy.roles.coder.dlp_allow_patterns",
        ),
    ],
)
def test_a_bad_allowlist_pattern_is_a_one_line_config_error_naming_the_key(
    tmp_path: Path, toml: str, key: str
) -> None:
    (tmp_path / "claudesec.toml").write_text(toml)
    with pytest.raises(ConfigError) as error:
        load_config(cwd=tmp_path, environ={})
    assert key in error.value.message
    assert "\n" not in str(error.value)
    assert error.value.exit_code == 2


def test_a_bad_allowlist_pattern_fails_the_cli_with_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "claudesec.toml").write_text('[dlp]\nallow_patterns = ["(x"]\n')
    done = subprocess.run(
        [sys.executable, "-m", "claudesec", "config", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CLAUDESEC_HOME": str(tmp_path / "home")},
        check=False,
    )
    assert done.returncode == 2
    assert "dlp.allow_patterns" in done.stderr
    assert "Traceback" not in done.stderr

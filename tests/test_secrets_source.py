"""One resolver for every key setting: env, keyring, Secrets Manager, a managed key."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from claudesec.anthropic_admin import resolve_admin_key
from claudesec.config import KeysConfig
from claudesec.errors import ConfigError
from claudesec.secrets_source import check_source, read_secret

SETTING = "proxy.key_source"


def read(source: str, **kwargs: Any) -> str:
    return read_secret(source, setting=SETTING, **kwargs).value


def test_env_is_stripped_and_a_missing_variable_is_a_config_error() -> None:
    assert read("env:X", environ={"X": " value "}) == "value"
    with pytest.raises(ConfigError, match=r"MISSING named by proxy\.key_source is not set"):
        read("env:MISSING", environ={})


@pytest.mark.parametrize(
    "source",
    ["plain-value", "vault:x", "env:", "keyring:no-slash", "env:CLAUDESEC_AUDIT_APP"],
)
def test_unusable_sources_are_refused_before_any_read(source: str) -> None:
    with pytest.raises(ConfigError):
        check_source(source, setting=SETTING)


def test_keyring_entry(file_keyring: Any) -> None:
    import keyring

    keyring.set_password("claudesec-test", "upstream", "from-keyring")
    assert read("keyring:claudesec-test/upstream") == "from-keyring"
    with pytest.raises(ConfigError, match="nothing in the keyring"):
        read("keyring:claudesec-test/absent")


def test_secrets_manager_plain_and_json(aws_client: Callable[..., Any], aws_endpoint: str) -> None:
    client = aws_client("secretsmanager")
    client.create_secret(Name="plain", SecretString="plain-value")
    client.create_secret(Name="json", SecretString=json.dumps({"key": "k1", "key_id": "id1"}))
    client.create_secret(Name="token", SecretString=json.dumps({"token": "t"}))
    client.create_secret(Name="keyless", SecretString=json.dumps({"other": "t"}))
    keys = KeysConfig(aws_region="us-east-1", aws_endpoint_url=aws_endpoint, aws_max_attempts=1)
    assert read("secretsmanager:plain", keys_config=keys) == "plain-value"
    found = read_secret("secretsmanager:json", setting=SETTING, keys_config=keys)
    assert (found.value, found.key_id) == ("k1", "id1")
    assert "k1" not in repr(found)
    # SIEM tokens and webhook URLs are often stored as {"token": ...} or {"url": ...}.
    assert read("secretsmanager:token", keys_config=keys) == "t"
    with pytest.raises(ConfigError, match="JSON without a key/token/"):
        read("secretsmanager:keyless", keys_config=keys)


def test_store_reads_a_managed_key_by_its_short_or_full_name(
    aws_client: Callable[..., Any], aws_endpoint: str
) -> None:
    client = aws_client("secretsmanager")
    client.create_secret(Name="claudesec/app", SecretString=json.dumps({"key": "managed"}))
    keys = KeysConfig(aws_region="us-east-1", aws_endpoint_url=aws_endpoint, aws_max_attempts=1)
    assert read("store:app", keys_config=keys) == "managed"
    assert read("store:claudesec/app", keys_config=keys) == "managed"


def test_the_admin_key_uses_the_same_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_ADMIN", " value-from-env ")
    assert resolve_admin_key("env:MY_ADMIN") == "value-from-env"
    with pytest.raises(ConfigError, match=r"anthropic\.admin_key_source"):
        resolve_admin_key("env:MISSING_ONE")

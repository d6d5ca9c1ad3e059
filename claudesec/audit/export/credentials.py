"""Secrets for sinks and alert targets: named by a source, never written in config or argv.

``env:VAR``, ``keyring:SERVICE/NAME`` or ``secretsmanager:SECRET_ID`` (a plain string, or JSON
with a ``token``/``key``/``url`` field, read at ``AWSCURRENT``). The same schemes as
``anthropic.admin_key_source``, so operators learn one convention.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from claudesec.errors import ConfigError, ExternalServiceError

_HINT = "use env:VAR, keyring:SERVICE/NAME or secretsmanager:SECRET_ID"
_JSON_FIELDS = ("token", "key", "api_key", "password", "url", "secret")


def resolve_secret(
    source: str,
    *,
    what: str,
    environ: Mapping[str, str] | None = None,
    aws_region: str = "",
    aws_endpoint_url: str = "",
) -> str:
    """The secret ``source`` names; ``what`` (e.g. ``export.sinks.siem.token_source``) is only
    used in messages, which never contain the secret."""
    scheme, _, rest = source.partition(":")
    if not source or not rest:
        raise ConfigError(f"{what} is {'empty' if not source else 'missing a scheme'}", hint=_HINT)
    if scheme == "env":
        env = os.environ if environ is None else environ
        value = env.get(rest, "").strip()
        if not value:
            raise ConfigError(f"{what}: the variable {rest} is not set", hint="export it")
        return value
    if scheme == "keyring":
        service, _, name = rest.partition("/")
        import keyring

        value = (keyring.get_password(service, name) or "").strip()
        if not value:
            raise ConfigError(f"{what}: nothing in the keyring at {service}/{name}")
        return value
    if scheme == "secretsmanager":
        return _from_secrets_manager(rest, what, aws_region, aws_endpoint_url)
    raise ConfigError(f"{what}: unknown scheme {scheme!r}", hint=_HINT)


def _from_secrets_manager(secret_id: str, what: str, region: str, endpoint_url: str) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "secretsmanager", region_name=region or None, endpoint_url=endpoint_url or None
    )
    try:
        answer = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except (BotoCoreError, ClientError) as exc:
        raise ExternalServiceError(f"{what}: cannot read secret {secret_id}: {exc}") from exc
    text = str(answer.get("SecretString", "")).strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        for name in _JSON_FIELDS:
            if isinstance(data.get(name), str):
                return str(data[name]).strip()
    return text

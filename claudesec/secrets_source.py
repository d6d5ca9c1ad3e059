"""Where a secret named in the configuration is read from: one resolver for every setting that
names a key instead of holding it (``anthropic.admin_key_source``, ``proxy.key_source``).

A source is ``SCHEME:REST``:

* ``env:VAR``: the process environment (containers that mount secrets as variables);
* ``keyring:SERVICE/NAME``: a plain OS keyring entry;
* ``secretsmanager:SECRET_ID``: any AWS Secrets Manager secret, read at ``AWSCURRENT``;
* ``store:NAME``: a key managed by ``claudesec keys`` in ``keys.store`` (Secrets Manager or the
  keyring; ``NAME`` with or without ``keys.secret_prefix``), at its current version, so a
  rotation is picked up on the next read.

A stored secret is plain text, or JSON with a ``key`` field (and ``key_id``), as ``keys rotate``
writes it. Messages name the setting and the source, never the value.

Imports are lazy: ``keyring`` and ``boto3`` load only when a source needs them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from claudesec.errors import ConfigError, ExternalServiceError

if TYPE_CHECKING:
    from claudesec.config import KeysConfig

SCHEMES = ("env", "keyring", "secretsmanager", "store")
HINT = "use env:VAR, keyring:SERVICE/NAME, secretsmanager:SECRET_ID or store:NAME"


@dataclass(frozen=True, slots=True)
class ResolvedSecret:
    """A secret read from its source and, when the store records it, the Anthropic key id."""

    value: str = field(repr=False)
    key_id: str = ""


class SecretUnavailable(ExternalServiceError):
    """The source's backend (the keyring, AWS) failed to answer (exit 3)."""


def check_source(source: str, *, setting: str) -> tuple[str, str]:
    """``(scheme, rest)`` of a usable source; :class:`ConfigError` (exit 2) otherwise.

    Cheap and offline, so a service can refuse a bad setting at start-up rather than on its
    first request.
    """
    scheme, sep, rest = source.partition(":")
    if not sep or scheme not in SCHEMES or not rest:
        raise ConfigError(f"{setting} {source!r} is not understood", hint=HINT)
    if scheme == "keyring" and "/" not in rest:
        raise ConfigError(f"{setting}: keyring: needs SERVICE/NAME")
    if scheme == "env" and rest.startswith("CLAUDESEC_"):
        # CLAUDESEC_<SECTION>_<KEY> variables are config overrides; a key there would either
        # be rejected as an unknown setting or shown by `config show`.
        raise ConfigError(f"{setting} must not name a CLAUDESEC_ variable")
    return scheme, rest


def read_secret(
    source: str,
    *,
    setting: str,
    keys_config: KeysConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedSecret:
    """Read the secret now (blocking: AWS or the keyring may be slow); never cached here.

    Raises :class:`ConfigError` when the source holds nothing usable (an unset variable, no
    keyring entry, JSON without ``key``) and :class:`ExternalServiceError` when its backend
    fails.
    """
    scheme, rest = check_source(source, setting=setting)
    if scheme == "env":
        value = (os.environ if environ is None else environ).get(rest, "").strip()
        if not value:
            raise ConfigError(
                f"the variable {rest} named by {setting} is not set",
                hint=f"export it, or set {setting}",
            )
        return ResolvedSecret(value)
    if scheme == "keyring":
        return _from_keyring(rest, setting)

    from claudesec.config import KeysConfig

    keys = keys_config or KeysConfig()
    if scheme == "store":
        from claudesec.stores import open_store

        # NAME as `claudesec keys` knows it; the store holds it under keys.secret_prefix.
        name = rest if rest.startswith(keys.secret_prefix) else keys.secret_prefix + rest
        text = open_store(keys).read(name).text
    else:
        from claudesec.stores.secretsmanager import SecretsManagerStore

        text = SecretsManagerStore.from_config(keys).read(rest).text
    return parse_secret(text, f"{setting}: secret {rest}")


def _from_keyring(rest: str, setting: str) -> ResolvedSecret:
    import keyring
    import keyring.errors

    service, _, name = rest.partition("/")
    try:
        value = (keyring.get_password(service, name) or "").strip()
    except keyring.errors.KeyringError as exc:
        raise SecretUnavailable(
            f"{setting}: cannot read the keyring entry {service}/{name}: {exc}"
        ) from exc
    if not value:
        raise ConfigError(f"{setting}: nothing in the keyring at {service}/{name}")
    return ResolvedSecret(value)


# JSON secrets hold their value under one of these names, in this order: `keys rotate` writes
# "key"; SIEM tokens and webhook URLs are usually stored as "token", "password" or "url".
JSON_FIELDS = ("key", "token", "api_key", "password", "url", "secret")


def parse_secret(text: str, what: str) -> ResolvedSecret:
    """A stored secret's value: plain text, or JSON with one of :data:`JSON_FIELDS` (and
    ``key_id`` beside a managed key)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for name in JSON_FIELDS:
                value = data.get(name)
                if isinstance(value, str) and value.strip():
                    return ResolvedSecret(value.strip(), str(data.get("key_id") or ""))
        raise ConfigError(f"{what} is JSON without a {'/'.join(JSON_FIELDS)} field")
    if not stripped:
        raise ConfigError(f"{what} is empty")
    return ResolvedSecret(stripped)

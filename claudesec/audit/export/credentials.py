"""Secrets for sinks and alert targets: named by a source, never written in config or argv.

The sources are those of :mod:`claudesec.secrets_source` (``env:VAR``, ``keyring:SERVICE/NAME``,
``secretsmanager:SECRET_ID``, ``store:NAME``), so operators learn one convention; a sink may
name its own AWS region and endpoint for Secrets Manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claudesec.config import SinkConfig


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
    from claudesec.config import KeysConfig
    from claudesec.secrets_source import read_secret

    keys = KeysConfig()
    if aws_region or aws_endpoint_url:
        keys = replace(keys, aws_region=aws_region, aws_endpoint_url=aws_endpoint_url)
    return read_secret(source, setting=what, keys_config=keys, environ=environ).value


def sink_secret(name: str, config: SinkConfig) -> str:
    """The secret sink ``name``'s ``token_source`` names, looked up with the sink's AWS region
    and endpoint."""
    return resolve_secret(
        config.token_source,
        what=f"export.sinks.{name}.token_source",
        aws_region=config.aws_region,
        aws_endpoint_url=config.aws_endpoint_url,
    )

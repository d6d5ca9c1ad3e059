"""Every problem with a configuration, found in one run (``claudesec config validate``).

The loader (:mod:`claudesec.config`) checks each key's name, type and domain; each section that
has rules of its own checks them here the same way its consumer will at start-up: the policy
(roles, models, users), OIDC identity, DLP's custom patterns, the secret sources, the proxy's
federation settings and the ``[[org.suppressions]]`` of ``org check``. A user
fixes the file once instead of once per error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from claudesec.config import Config, LoadedConfig, load_config
from claudesec.errors import ConfigError, ExitCode


@dataclass(frozen=True, slots=True)
class ConfigCheck:
    """The configuration checked: where it came from and every problem found."""

    loaded: LoadedConfig
    problems: tuple[ConfigError, ...]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.USAGE if self.problems else ExitCode.OK


def check_config(path: Path | None = None) -> ConfigCheck:
    """Load the configuration collecting every problem, then run each section's own checks."""
    loaded = load_config(path, collect=True)
    where = str(loaded.path) if loaded.path else None
    problems = list(loaded.problems)
    checks = _section_checks(loaded.config, where)
    checks.append(lambda: _custom_rules(loaded))
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            problems.append(exc)
    problems.extend(_federation(loaded))
    problems.extend(_proxy_federation(loaded.config))
    return ConfigCheck(loaded, tuple(problems))


def _section_checks(config: Config, where: str | None) -> list[Callable[[], object]]:
    from claudesec.guard.dlp import compile_custom_patterns
    from claudesec.guard.identity import validate_identity_config
    from claudesec.guard.policy import validate_policy
    from claudesec.org.check import validate_suppressions
    from claudesec.secrets_source import check_source

    admin_source = config.anthropic.admin_key_source
    checks: list[Callable[[], object]] = [
        lambda: validate_policy(config.policy, config.identity.group_roles, path=where),
        lambda: compile_custom_patterns(config.dlp.custom_patterns),
        lambda: check_source(admin_source, setting="anthropic.admin_key_source"),
        lambda: validate_suppressions(config.org, path=where),
    ]
    if config.proxy.upstream_credential != "federation":
        # A federated proxy holds no key: its key_source is never read.
        checks.append(lambda: check_source(config.proxy.key_source, setting="proxy.key_source"))
    if config.identity.issuer or config.identity.jwks_url:
        checks.append(lambda: validate_identity_config(config.identity, path=where))
    return checks


def _federation(loaded: LoadedConfig) -> tuple[ConfigError, ...]:
    """``[[federation.*]]`` tables: presets, references, workspaces, every problem at once."""
    from claudesec.federation.spec import load_spec

    return load_spec(loaded)[1]


def _proxy_federation(config: Config) -> list[ConfigError]:
    """``[proxy] upstream_credential = "federation"``: the rule, organisation and identity
    token file it exchanges with, each from the config or the SDK's environment variable."""
    from claudesec.proxy.upstream import FederationSettings

    return FederationSettings.problems(config.proxy)


def _custom_rules(loaded: LoadedConfig) -> None:
    """``[[scan.rules]]`` and ``scan.gitleaks_config``: regexes, fields, file lines."""
    from claudesec.scan.command import load_custom_rules

    load_custom_rules(loaded)

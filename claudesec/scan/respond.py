"""``scan --revoke``: what the scan does with the live Anthropic keys ``--verify`` proved.

Each distinct live API key is identified through the Admin API and, with ``--revoke`` (or
``scan.on_live_key = "revoke"``), deactivated at once by :mod:`claudesec.keys.leak` (the
``keys revoke`` code path: a managed key is rotated to a spare). Every finding of that key
carries the response; each response is an audit event and an alert to every configured
target (``[alerts.targets]``). Admin keys and OAuth tokens have no Admin API switch: they are
reported live, with the Console step in their fix.

The Admin API credential comes from ``anthropic.admin_key_source`` (an environment variable,
the keyring, Secrets Manager), never from the command line; :func:`require_admin` checks it
before the scan starts, so a run that cannot revoke fails closed at once (exit 2).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from claudesec.errors import ConfigError
from claudesec.scan.model import Finding, Verdict

if TYPE_CHECKING:
    from claudesec.config import Config
    from claudesec.keys.leak import LeakResponse

RESPONDS_TO = "anthropic-api-key"
ALERT_RULE = "leaked_key"


def require_admin(config: Config) -> None:
    """Fail closed, before scanning, when no Admin API key is configured."""
    from claudesec.anthropic_admin import resolve_admin_key

    try:
        resolve_admin_key(config.anthropic.admin_key_source, keys_config=config.keys)
    except ConfigError as exc:
        raise ConfigError(
            f"--revoke needs an Anthropic Admin API key: {exc.message}",
            hint=exc.hint or "set anthropic.admin_key_source (default env:ANTHROPIC_ADMIN_KEY)",
        ) from None


def respond(
    findings: Sequence[Finding], config: Config, *, revoke: bool
) -> tuple[list[Finding], list[str]]:
    """The findings with each live API key's response attached, and warnings (alerts that
    could not be sent)."""
    from claudesec.keys.factory import open_manager
    from claudesec.keys.leak import respond as respond_to_key

    live: dict[str, Finding] = {}
    for finding in findings:
        if finding.rule_id == RESPONDS_TO and finding.verification == Verdict.LIVE:
            live.setdefault(finding.secret, finding)
    if not live:
        return list(findings), []
    responses: dict[str, LeakResponse] = {}
    manager = open_manager(config, lazy_audit=True)
    try:
        for secret, first in live.items():
            where = f"{first.path}:{first.line}"
            responses[secret] = respond_to_key(manager, secret, revoke=revoke, where=where)
    finally:
        manager.close()
    warnings = _alert(config, responses, live)
    attached = [
        dataclasses.replace(
            f, response=responses[f.secret].action, response_detail=responses[f.secret].message
        )
        if f.secret in responses and f.rule_id == RESPONDS_TO
        else f
        for f in findings
    ]
    return attached, warnings


def _alert(
    config: Config, responses: dict[str, LeakResponse], live: dict[str, Finding]
) -> list[str]:
    """One alert per response to every configured target; failures become warnings."""
    if not config.alerts.targets:
        return []
    from claudesec.audit.alerts import Alert, AlertState, build_targets, notify
    from claudesec.audit.export import state_dir

    now = time.time_ns()
    alerts = [
        Alert(
            rule=ALERT_RULE,
            subject=response.identity.key_id if response.identity else response.hint,
            count=1,
            first_ns=now,
            last_ns=now,
            detail={
                "action": response.action,
                "key": response.hint,
                "found_at": f"{live[secret].path}:{live[secret].line}",
                "managed": bool(response.identity and response.identity.managed_as),
            },
        )
        for secret, response in responses.items()
    ]
    try:
        targets = build_targets(config.alerts.targets)
        state = AlertState(state_dir(config.export).parent / "alerts.db")
    except ConfigError as exc:
        return [f"leaked-key alert not sent: {exc.user_message()}"]
    try:
        result = notify(alerts, targets, state, config.alerts, now_ns=now)
    finally:
        state.close()
    return [f"leaked-key alert not sent: {failure}" for failure in result.failures]

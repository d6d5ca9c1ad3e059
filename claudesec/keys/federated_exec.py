"""``keys exec --federation``: run a command on workload identity federation, with no key.

Two ways to hand the command its credential, neither through argv:

* the **chain** (default): the child gets ``ANTHROPIC_FEDERATION_RULE_ID``,
  ``ANTHROPIC_ORGANIZATION_ID`` and ``ANTHROPIC_IDENTITY_TOKEN_FILE`` (and the optional
  service account / workspace), so any Anthropic SDK in it exchanges its own tokens and
  refreshes them for as long as it runs. ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_AUTH_TOKEN``
  are removed: either would shadow the chain (the SDK takes a static credential first).
* **mint**: claudesec exchanges the identity token once, now, and the child gets the
  short-lived access token as ``ANTHROPIC_AUTH_TOKEN`` (and the OAuth beta flag in
  ``ANTHROPIC_CUSTOM_HEADERS``): for tools that read a bearer token but do not speak
  federation. It stops working at its expiry, by design.

The exchange is the SDK's own (``exchange_federation_assertion``), against
``anthropic.base_url``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from claudesec.errors import ConfigError, ExternalServiceError

RULE_VAR = "ANTHROPIC_FEDERATION_RULE_ID"
ORG_VAR = "ANTHROPIC_ORGANIZATION_ID"
TOKEN_FILE_VAR = "ANTHROPIC_IDENTITY_TOKEN_FILE"  # noqa: S105 - a variable name
SERVICE_ACCOUNT_VAR = "ANTHROPIC_SERVICE_ACCOUNT_ID"
WORKSPACE_VAR = "ANTHROPIC_WORKSPACE_ID"
OAUTH_BETA = "oauth-2025-04-20"
# Static credentials the SDK would take before the federation chain.
SHADOWING_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_IDENTITY_TOKEN")


@dataclass(frozen=True)
class Workload:
    """Who the command runs as: a federation rule and the identity token file to present."""

    rule_id: str
    organization_id: str
    identity_token_file: str
    service_account_id: str = ""
    workspace_id: str = ""

    @classmethod
    def resolve(
        cls,
        *,
        rule_id: str | None,
        organization_id: str | None,
        identity_token_file: str | None,
        environ: Mapping[str, str],
    ) -> Workload:
        """Options first, then the SDK's variables; a missing one is a usage error naming both."""

        def pick(value: str | None, option: str, var: str) -> str:
            found = value or environ.get(var, "")
            if not found:
                raise ConfigError(
                    f"--federation needs {option} (or ${var})",
                    hint=f"pass {option}, or export {var}",
                )
            return found

        workload = cls(
            rule_id=pick(rule_id, "--rule-id", RULE_VAR),
            organization_id=pick(organization_id, "--organization-id", ORG_VAR),
            identity_token_file=pick(identity_token_file, "--identity-token-file", TOKEN_FILE_VAR),
            service_account_id=environ.get(SERVICE_ACCOUNT_VAR, ""),
            workspace_id=environ.get(WORKSPACE_VAR, ""),
        )
        if not os.access(workload.identity_token_file, os.R_OK):
            raise ConfigError(
                f"the identity token file {workload.identity_token_file} cannot be read",
                hint="point --identity-token-file at the workload's OIDC token",
            )
        return workload


def federated_environment(
    environ: Mapping[str, str],
    workload: Workload,
    *,
    mint: bool = False,
    base_url: str = "https://api.anthropic.com",
) -> dict[str, str]:
    """The child's environment: the chain's variables, or (``mint``) a fresh access token."""
    env = {k: v for k, v in environ.items() if k not in SHADOWING_VARS}
    if not mint:
        env[RULE_VAR] = workload.rule_id
        env[ORG_VAR] = workload.organization_id
        env[TOKEN_FILE_VAR] = workload.identity_token_file
        for var, value in (
            (SERVICE_ACCOUNT_VAR, workload.service_account_id),
            (WORKSPACE_VAR, workload.workspace_id),
        ):
            if value:
                env[var] = value
        return env
    for var in (RULE_VAR, TOKEN_FILE_VAR):
        env.pop(var, None)  # the child holds the minted token, not the means to mint more
    env["ANTHROPIC_AUTH_TOKEN"] = mint_token(workload, base_url=base_url)
    # A bearer token is accepted only with the OAuth beta flag, which the SDKs add for their
    # own credential chain but not for ANTHROPIC_AUTH_TOKEN: ANTHROPIC_CUSTOM_HEADERS (read by
    # the SDKs and Claude Code) carries it.
    env["ANTHROPIC_CUSTOM_HEADERS"] = _with_oauth_beta(env.get("ANTHROPIC_CUSTOM_HEADERS", ""))
    return env


def _with_oauth_beta(custom: str) -> str:
    lines = [line for line in custom.split("\n") if line.strip()]
    for index, line in enumerate(lines):
        name, _, value = line.partition(":")
        if name.strip().lower() == "anthropic-beta":
            flags = [f.strip() for f in value.split(",") if f.strip()]
            if OAUTH_BETA not in flags:
                flags.append(OAUTH_BETA)
            lines[index] = f"anthropic-beta: {','.join(flags)}"
            return "\n".join(lines)
    return "\n".join([*lines, f"anthropic-beta: {OAUTH_BETA}"])


def mint_token(workload: Workload, *, base_url: str) -> str:
    """One exchange of the workload's identity token, by the SDK; the access token."""
    from anthropic import AnthropicError
    from anthropic.lib.credentials import IdentityTokenFile, exchange_federation_assertion

    try:
        assertion = IdentityTokenFile(workload.identity_token_file)()
        token = exchange_federation_assertion(
            assertion=assertion,
            federation_rule_id=workload.rule_id,
            organization_id=workload.organization_id,
            service_account_id=workload.service_account_id or None,
            workspace_id=workload.workspace_id or None,
            base_url=base_url,
        )
    except AnthropicError as exc:
        # The SDK's messages are redacted: no assertion, no token.
        raise ExternalServiceError(
            f"the token exchange failed: {exc}",
            hint="check the identity token, the federation rule and the auth events",
        ) from None
    return token.token

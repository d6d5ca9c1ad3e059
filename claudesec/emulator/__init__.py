"""A loopback Anthropic API emulator for tests, offline drills and ``claudesec emulator serve``.

Speaks the real wire format (Messages with SSE streaming, count_tokens, models, the Admin
API's organization/API-key/usage endpoints, workspaces, service accounts, federation issuers
and rules, and the ``jwt-bearer`` token exchange) so the real ``anthropic`` SDK works against
it through ``base_url=``. Importing it never pulls in the SDK; PyJWT, ``cryptography`` and
CEL are imported only when a token is exchanged. :class:`OidcIssuer` is a loopback HTTPS
OIDC issuer whose CI-shaped tokens the exchange accepts.

    from claudesec.emulator import Emulator

    with Emulator() as emulator:
        key_id, secret = emulator.state.add_key("api")
        client = anthropic.Anthropic(api_key=secret, base_url=emulator.base_url)
        emulator.state.inject_fault("rate_limit", count=2, retry_after=0.1)
"""

from __future__ import annotations

from claudesec.emulator.control import EmulatorControl, EmulatorControlError
from claudesec.emulator.faults import Fault, FaultKind
from claudesec.emulator.keys import (
    Actor,
    IssuedKey,
    KeyKind,
    KeyRecord,
    KeyStatus,
    generate_secret,
    partial_key_hint,
)
from claudesec.emulator.messages import estimate_tokens
from claudesec.emulator.models import ModelSpec
from claudesec.emulator.oauth import AccessToken, AuthEvent, IssuedToken
from claudesec.emulator.oidc_issuer import OidcIssuer
from claudesec.emulator.server import DEFAULT_HOST, DEFAULT_PORT, Emulator, serve_forever
from claudesec.emulator.state import (
    EmulatorState,
    RequestRecord,
    Settings,
    TransitionError,
    UsageRecord,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "AccessToken",
    "Actor",
    "AuthEvent",
    "Emulator",
    "EmulatorControl",
    "EmulatorControlError",
    "EmulatorState",
    "Fault",
    "FaultKind",
    "IssuedKey",
    "IssuedToken",
    "KeyKind",
    "KeyRecord",
    "KeyStatus",
    "ModelSpec",
    "OidcIssuer",
    "RequestRecord",
    "Settings",
    "TransitionError",
    "UsageRecord",
    "estimate_tokens",
    "generate_secret",
    "partial_key_hint",
    "serve_forever",
]

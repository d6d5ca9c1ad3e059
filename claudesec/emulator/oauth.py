"""OAuth access tokens and the RFC 7523 ``jwt-bearer`` exchange at ``POST /v1/oauth/token``.

A workload presents its own OIDC token (the *assertion*) and a federation rule id; the
exchange verifies the assertion against the rule's issuer and mints a short-lived,
workspace-scoped access token acting as the rule's service account. The checks, in order,
each refusing with 401 ``invalid_grant`` and a reason recorded in :meth:`TokenStore.events`
(the emulator's "authentication events" page; the answer itself says only that the grant was
refused, so a caller cannot probe which check failed):

1. the rule exists, is live, belongs to the organisation; its issuer is live;
2. the header names an asymmetric ``alg`` and a ``kid`` found *exactly* in the issuer's
   JWKS (discovery, explicit URL or inline), and the signature verifies with that key;
3. ``iss`` equals the issuer URL; ``exp`` and ``iat`` are present, ``exp`` is in the future,
   ``nbf`` and ``iat`` are not, and ``exp - iat <= max_jwt_lifetime_seconds`` (no leeway);
4. ``aud`` (any element of a list) equals the rule's ``audience``, or the organisation's
   default audience when the rule names none;
5. the subject prefix, claims and CEL condition of the rule all match;
6. the workspace: the one asked for must be enabled for the rule; with none asked, the
   rule's only workspace, else the default workspace if the rule covers it; the target
   service account must be live and a member there;
7. with ``check_jti`` on, a ``jti`` already exchanged is refused (recorded only on success,
   atomically with the check).

The token lives ``max(60, min(rule lifetime, 2 x remaining assertion validity))`` seconds.
Time is the emulator's clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import json
import math
import ssl
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from claudesec.emulator.federation import (
    SCOPE_ORG_ADMIN,
    FederationRegistry,
    Issuer,
    Rule,
    evaluate_condition,
    subject_matches,
)
from claudesec.emulator.keys import new_id, secret_digest

GRANT_TYPE_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
OAUTH_BETA = "oauth-2025-04-20"
FEDERATION_BETA = "oidc-federation-2026-04-01"
DEFAULT_AUDIENCE = "https://api.anthropic.com"
MIN_TOKEN_LIFETIME_S = 60
# Assertions signed with a shared secret (HS*) or none at all prove nothing about the
# workload: only public-key algorithms are accepted.
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_FAMILY = "sk-ant-"
OAUTH_TOKEN_PREFIX = _FAMILY + "oat01-"
_FETCH_TIMEOUT_S = 5.0
_MAX_JWKS_BYTES = 1 << 20
_EVENT_LIMIT = 10_000
# The SDK refuses to send more; real IdP tokens stay under 4 KiB.
MAX_ASSERTION_BYTES = 16 * 1024


def generate_access_token() -> str:
    import secrets

    return OAUTH_TOKEN_PREFIX + secrets.token_urlsafe(72)[:93] + "AA"


def is_oauth_token(secret: str) -> bool:
    return secret.startswith(OAUTH_TOKEN_PREFIX)


@dataclass(frozen=True)
class AccessToken:
    """A minted (or seeded) OAuth access token. Holds a digest, never the token."""

    id: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime
    workspace_id: str | None
    service_account_id: str | None = None
    user_id: str | None = None
    rule_id: str | None = None
    issuer_id: str | None = None
    subject: str | None = None
    secret_sha256: str = field(default="", repr=False, compare=False)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    @property
    def actor_id(self) -> str | None:
        return self.service_account_id or self.user_id


@dataclass(frozen=True)
class IssuedToken:
    """The answer of a successful exchange (the secret, once) and its record."""

    access_token: str
    expires_in: int
    record: AccessToken

    def __repr__(self) -> str:
        return f"IssuedToken(id={self.record.id!r}, expires_in={self.expires_in})"

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(sorted(self.record.scopes)),
        }


@dataclass(frozen=True)
class AuthEvent:
    """One exchange attempt, kept for tests and drills (never the assertion itself)."""

    at: datetime
    outcome: str  # "minted" or the refusal reason
    rule_id: str | None
    issuer_id: str | None = None
    subject: str | None = None
    workspace_id: str | None = None
    token_id: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "rule_id": self.rule_id,
            "issuer_id": self.issuer_id,
            "subject": self.subject,
            "workspace_id": self.workspace_id,
            "token_id": self.token_id,
            "detail": self.detail,
        }


class GrantRefused(Exception):
    """The exchange refuses the assertion; ``reason`` is the stable code in the event log."""

    def __init__(self, reason: str, detail: str = "", *, status: int = 401) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.status = status
        self.error = "invalid_grant" if status == 401 else "invalid_request"


@dataclass(frozen=True)
class ExchangeRequest:
    assertion: str
    federation_rule_id: str
    organization_id: str
    service_account_id: str | None = None
    workspace_id: str | None = None


class TokenStore:
    """Access tokens by digest, used ``jti`` values, and the authentication event log."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._tokens: dict[str, AccessToken] = {}
        self._jtis: dict[tuple[str, str], datetime] = {}
        self._events: deque[AuthEvent] = deque(maxlen=_EVENT_LIMIT)

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._jtis.clear()
            self._events.clear()

    def add(
        self,
        *,
        scopes: frozenset[str],
        lifetime_s: int,
        workspace_id: str | None,
        service_account_id: str | None = None,
        user_id: str | None = None,
        rule_id: str | None = None,
        issuer_id: str | None = None,
        subject: str | None = None,
    ) -> IssuedToken:
        secret = generate_access_token()
        now = self._clock()
        record = AccessToken(
            id=new_id("oatok"),
            scopes=scopes,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime_s),
            workspace_id=workspace_id,
            service_account_id=service_account_id,
            user_id=user_id,
            rule_id=rule_id,
            issuer_id=issuer_id,
            subject=subject,
            secret_sha256=secret_digest(secret),
        )
        with self._lock:
            self._tokens[record.secret_sha256] = record
        return IssuedToken(secret, lifetime_s, record)

    def lookup(self, secret: str) -> AccessToken | None:
        with self._lock:
            return self._tokens.get(secret_digest(secret))

    def tokens(self) -> list[AccessToken]:
        with self._lock:
            return list(self._tokens.values())

    def events(self) -> list[AuthEvent]:
        with self._lock:
            return list(self._events)

    def record(self, event: AuthEvent) -> None:
        with self._lock:
            self._events.append(event)

    def claim_jti(self, issuer_id: str, jti: str, until: datetime) -> bool:
        """Mark ``jti`` used until ``until``; False when it already was (a replay)."""
        now = self._clock()
        with self._lock:
            for key in [k for k, expiry in self._jtis.items() if expiry <= now]:
                del self._jtis[key]
            if (issuer_id, jti) in self._jtis:
                return False
            self._jtis[(issuer_id, jti)] = until
            return True


# ------------------------------------------------------------------------------ JWKS


def _fetch_json(url: str, ca_cert_pem: str | None) -> Any:
    import urllib.request

    if not url.startswith("https://"):
        raise GrantRefused("jwks_unavailable", f"refusing to fetch keys from {url!r}: not https")
    context = (
        ssl.create_default_context(cadata=ca_cert_pem)
        if ca_cert_pem
        else ssl.create_default_context()
    )
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=_FETCH_TIMEOUT_S) as response:
            return json.loads(response.read(_MAX_JWKS_BYTES + 1)[:_MAX_JWKS_BYTES])
    except (OSError, ValueError) as exc:
        raise GrantRefused("jwks_unavailable", f"{url}: {exc}") from None


def issuer_keys(issuer: Issuer) -> list[Mapping[str, Any]]:
    """The issuer's JWKS now. Fetched on every exchange: a rotated key is seen at once."""
    jwks = issuer.jwks
    if jwks.type == "inline":
        return list(jwks.keys)
    if jwks.type == "explicit_url":
        url = jwks.url or ""
    else:
        base = (jwks.discovery_base or issuer.issuer_url).rstrip("/")
        document = _fetch_json(base + "/.well-known/openid-configuration", jwks.ca_cert_pem)
        if not isinstance(document, dict) or document.get("issuer") != issuer.issuer_url:
            # OpenID Connect Discovery 4.3: the document must name the very issuer.
            raise GrantRefused("jwks_unavailable", "discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        url = jwks_uri if isinstance(jwks_uri, str) else ""
    found = _fetch_json(url, jwks.ca_cert_pem)
    keys = found.get("keys") if isinstance(found, dict) else None
    if not isinstance(keys, list):
        raise GrantRefused("jwks_unavailable", "JWKS has no keys array")
    return [k for k in keys if isinstance(k, dict)]


# ------------------------------------------------------------------------------ the exchange


def _verified_claims(
    assertion: str, issuer: Issuer, registry: FederationRegistry
) -> dict[str, Any]:
    import jwt

    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise GrantRefused("malformed_assertion") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise GrantRefused("unsupported_alg", f"alg {alg!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise GrantRefused("missing_kid")
    try:
        keys = issuer_keys(issuer)
    except GrantRefused:
        registry.record_poll(issuer.id, ok=False)
        raise
    if issuer.jwks.type != "inline":
        registry.record_poll(issuer.id, ok=True)
    matching = [k for k in keys if k.get("kid") == kid]
    if len(matching) != 1:
        raise GrantRefused("unknown_kid", f"kid {kid!r} is not in the issuer's JWKS")
    jwk = matching[0]
    if jwk.get("alg") not in (None, alg) or jwk.get("use") not in (None, "sig"):
        raise GrantRefused("unsupported_alg", "the key is not for this algorithm")
    try:
        key = jwt.PyJWK.from_dict(dict(jwk), algorithm=alg)
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key=key,
            algorithms=[alg],
            # Time and audience are checked below against the emulator's clock and the rule.
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise GrantRefused("bad_signature", type(exc).__name__) from None
    return claims


def _numeric(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    # JSON lets a signer write Infinity or NaN; neither is a time.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GrantRefused(f"invalid_{name}")
    return int(value)


def _check_times(claims: Mapping[str, Any], issuer: Issuer, now: int) -> int:
    """Validate the time claims; returns the assertion's remaining validity in seconds."""
    exp, iat, nbf = _numeric(claims, "exp"), _numeric(claims, "iat"), _numeric(claims, "nbf")
    if exp is None:
        raise GrantRefused("missing_exp")
    if iat is None:
        raise GrantRefused("missing_iat")
    if exp <= now:
        raise GrantRefused("expired", f"exp {exp} <= now {now}")
    if iat > now:
        raise GrantRefused("issued_in_future")
    if nbf is not None and nbf > now:
        raise GrantRefused("not_yet_valid")
    if exp - iat > issuer.max_jwt_lifetime_seconds:
        raise GrantRefused(
            "lifetime_too_long",
            f"exp - iat = {exp - iat}s > {issuer.max_jwt_lifetime_seconds}s allowed",
        )
    return exp - now


def _check_match(rule: Rule, claims: Mapping[str, Any], default_audience: str) -> None:
    expected = rule.match.audience or default_audience
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if expected not in audiences:
        raise GrantRefused("audience_mismatch", f"aud does not contain {expected!r}")
    subject = claims.get("sub")
    if rule.match.subject_prefix is not None and not (
        isinstance(subject, str) and subject_matches(rule.match.subject_prefix, subject)
    ):
        raise GrantRefused("subject_mismatch")
    for name, value in (rule.match.claims or {}).items():
        # Exact string equality only: a list or number never equals the configured string.
        if claims.get(name) != value or not isinstance(claims.get(name), str):
            raise GrantRefused("claim_mismatch", name)
    if rule.match.condition is not None and not evaluate_condition(rule.match.condition, claims):
        raise GrantRefused("condition_false")


def _pick_workspace(
    rule: Rule, registry: FederationRegistry, requested: str | None
) -> tuple[str, bool]:
    enabled = registry.enabled_workspaces(rule)
    default = registry.default_workspace_id
    if requested == "default":
        requested = default
    if requested is not None:
        if requested not in enabled:
            raise GrantRefused("workspace_not_enabled", requested)
        return requested, enabled[requested]
    if len(enabled) == 1:
        only = next(iter(enabled))
        return only, enabled[only]
    if default in enabled:
        return default, enabled[default]
    raise GrantRefused(
        "workspace_required",
        "the rule is enabled for several workspaces; name one with workspace_id",
    )


def exchange(
    request: ExchangeRequest,
    *,
    organization_id: str,
    registry: FederationRegistry,
    store: TokenStore,
    clock: Callable[[], datetime],
    default_audience: str = DEFAULT_AUDIENCE,
) -> IssuedToken:
    """Run the jwt-bearer exchange; raises :class:`GrantRefused`. Records an event either way."""
    event: dict[str, Any] = {"rule_id": request.federation_rule_id}
    try:
        issued = _exchange(
            request, organization_id, registry, store, clock, default_audience, event
        )
    except GrantRefused as refused:
        store.record(AuthEvent(at=clock(), outcome=refused.reason, detail=refused.detail, **event))
        raise
    store.record(AuthEvent(at=clock(), outcome="minted", token_id=issued.record.id, **event))
    return issued


def _exchange(
    request: ExchangeRequest,
    organization_id: str,
    registry: FederationRegistry,
    store: TokenStore,
    clock: Callable[[], datetime],
    default_audience: str,
    event: dict[str, Any],
) -> IssuedToken:
    if request.organization_id != organization_id:
        raise GrantRefused("organization_mismatch")
    try:
        rule = registry.rule(request.federation_rule_id)
    except Exception:
        raise GrantRefused("rule_not_found") from None
    if rule.archived_at is not None:
        raise GrantRefused("rule_archived")
    issuer = registry.issuer(rule.issuer_id)
    event["issuer_id"] = issuer.id
    if issuer.archived_at is not None:
        raise GrantRefused("issuer_archived")
    claims = _verified_claims(request.assertion, issuer, registry)
    subject = claims.get("sub")
    event["subject"] = subject if isinstance(subject, str) else None
    if claims.get("iss") != issuer.issuer_url:
        raise GrantRefused("issuer_mismatch", "iss differs from the issuer URL")
    now = clock()
    remaining = _check_times(claims, issuer, int(now.timestamp()))
    _check_match(rule, claims, default_audience)
    if (
        request.service_account_id is not None
        and request.service_account_id != rule.service_account_id
    ):
        raise GrantRefused("service_account_mismatch")
    workspace_id, enforce_membership = _pick_workspace(rule, registry, request.workspace_id)
    event["workspace_id"] = workspace_id
    account = registry.service_account(rule.service_account_id)
    if account.archived_at is not None:
        raise GrantRefused("service_account_archived")
    if enforce_membership and registry.membership(account.id, workspace_id) is None:
        raise GrantRefused("not_a_member", f"{account.id} is not a member of {workspace_id}")
    if SCOPE_ORG_ADMIN in rule.scopes and account.organization_role != "admin":
        raise GrantRefused("role_demoted", "org:admin needs an admin-role service account")
    jti = claims.get("jti")
    # Claimed last, atomically, and only for an exchange that mints: a refused attempt must
    # not burn the workload's token, and two racing replays cannot both pass.
    if (
        issuer.check_jti
        and jti is not None
        and (
            not isinstance(jti, str)
            or not store.claim_jti(issuer.id, jti, now + timedelta(seconds=remaining))
        )
    ):
        raise GrantRefused("jti_replayed")
    lifetime = max(MIN_TOKEN_LIFETIME_S, min(rule.token_lifetime_seconds, 2 * remaining))
    return store.add(
        scopes=rule.scopes,
        lifetime_s=lifetime,
        workspace_id=workspace_id,
        service_account_id=account.id,
        rule_id=rule.id,
        issuer_id=issuer.id,
        subject=event["subject"],
    )


def parse_exchange_body(body: Any) -> ExchangeRequest:
    """The token request (JSON or form) -> :class:`ExchangeRequest`; 400-type refusals."""
    if not isinstance(body, dict):
        raise GrantRefused("invalid_request", "the body must be an object", status=400)
    grant = body.get("grant_type")
    if grant != GRANT_TYPE_JWT_BEARER:
        refused = GrantRefused("unsupported_grant_type", str(grant), status=400)
        refused.error = "unsupported_grant_type"
        raise refused
    values: dict[str, str | None] = {}
    for name in ("assertion", "federation_rule_id", "organization_id"):
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise GrantRefused("invalid_request", f"{name} is required", status=400)
        values[name] = value
    if len((values["assertion"] or "").encode()) > MAX_ASSERTION_BYTES:
        raise GrantRefused(
            "invalid_request", f"assertion is over {MAX_ASSERTION_BYTES} bytes", status=400
        )
    for name in ("service_account_id", "workspace_id"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise GrantRefused("invalid_request", f"{name} must be a string", status=400)
        values[name] = value
    return ExchangeRequest(
        assertion=values["assertion"] or "",
        federation_rule_id=values["federation_rule_id"] or "",
        organization_id=values["organization_id"] or "",
        service_account_id=values["service_account_id"],
        workspace_id=values["workspace_id"],
    )

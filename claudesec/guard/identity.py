"""Who is calling: a plain user id from a trusted back-end, or a verified OIDC token.

Trusted back-ends (a service that has already authenticated its own users) pass a user id;
its role then comes only from ``policy.users``. Everyone else presents a JWT from the
organisation's IdP (Okta, Entra ID, Keycloak, any OIDC issuer), verified here against the
issuer's JWKS: signature, ``iss``, ``aud``, ``exp``, ``nbf``, and an algorithm allow-list.

Defences worth knowing about when changing this module:

* The algorithm is checked against the allow-list *and* against the type of the key the
  ``kid`` names, before PyJWT sees the token. JWKS keys are public keys, so HMAC algorithms
  are never accepted: that closes the classic "HS256 signed with the RSA public key" confusion.
* The header is checked before any network fetch, and an unknown ``kid`` refreshes the JWKS at
  most once per ``identity.jwks_min_refresh_s``: a flood of tokens with random kids costs the
  IdP one request per interval, not one per token.
* Key material is fetched over HTTPS only (also after redirects and from discovery), with the
  configured CA bundle, and with a size cap.
* Rejections carry a reason code and a fixed message; they never quote the token or its claims.

Entra ID puts app roles in ``roles`` and groups (as GUIDs) in ``groups``; Okta puts groups in
``groups``. ``identity.roles_claim`` plus ``identity.roles_claims`` name where to look and
``identity.group_roles`` maps what is found there to claudesec roles. Groups overage (Entra's
``_claim_names`` when a user is in more than 200 groups) is not resolved: map an app role instead.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from claudesec.errors import CheckFailed, ConfigError, ExternalServiceError

if TYPE_CHECKING:
    from claudesec.config import IdentityConfig, PolicyConfig

# "proxy_token": established by ``claudesec proxy`` from a token it issued for one user and role;
# like a verified OIDC token (and unlike a plain user id), the credential itself grants the role.
IdentitySource = Literal["trusted", "oidc", "proxy_token"]

MAX_TOKEN_CHARS = 16 * 1024  # real IdP tokens are a few KB; larger is abuse or a mistake
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_USER_CHARS = 256
_FAILURE_BACKOFF_S = 5.0

# Which JWS algorithms each JWK key type can verify. HMAC ("oct") keys have no entry: a JWKS
# publishes public keys, and a shared secret published there would be no secret at all.
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}
_OKP_CURVES = frozenset({"Ed25519", "Ed448"})
SUPPORTED_ALGORITHMS = frozenset({*_RSA_ALGORITHMS, *_EC_ALGORITHMS.values(), "EdDSA"})


class RejectReason(StrEnum):
    """Why a caller's identity was refused; recorded with the denial."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    UNKNOWN_SIGNER = "unknown_signer"
    BAD_SIGNATURE = "bad_signature"
    DISALLOWED_ALGORITHM = "disallowed_algorithm"
    MALFORMED = "malformed"
    MISSING_CLAIM = "missing_claim"
    USER_MISMATCH = "user_mismatch"
    NO_IDENTITY = "no_identity"
    OIDC_NOT_CONFIGURED = "oidc_not_configured"


_MESSAGES: dict[RejectReason, str] = {
    RejectReason.EXPIRED: "the token has expired",
    RejectReason.NOT_YET_VALID: "the token is not valid yet (nbf or iat in the future)",
    RejectReason.WRONG_AUDIENCE: "the token was issued for another audience",
    RejectReason.WRONG_ISSUER: "the token was issued by another issuer",
    RejectReason.UNKNOWN_SIGNER: "the token's signing key is not in the issuer's JWKS",
    RejectReason.BAD_SIGNATURE: "the token's signature does not verify",
    RejectReason.DISALLOWED_ALGORITHM: "the token's signing algorithm is not allowed",
    RejectReason.MALFORMED: "the token is not a well-formed JWT",
    RejectReason.MISSING_CLAIM: "the token lacks a required claim",
    RejectReason.USER_MISMATCH: "the user given does not match the token's user",
    RejectReason.NO_IDENTITY: "no user id or token was given",
    RejectReason.OIDC_NOT_CONFIGURED: "a token was given but identity.issuer is not configured",
}


class IdentityRejected(CheckFailed):
    """The caller's identity was refused: a denial to record, never a crash (exit 1)."""

    def __init__(self, reason: RejectReason, detail: str = "", *, hint: str | None = None) -> None:
        text = _MESSAGES[reason] + (f": {detail}" if detail else "")
        super().__init__(f"identity rejected ({reason.value}): {text}", hint=hint)
        self.reason = reason


class IdentityProviderError(ExternalServiceError):
    """The IdP's discovery document or JWKS could not be fetched or understood (exit 3)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A caller whose identity has been established (not yet authorised: that is policy's job).

    ``roles`` are claudesec roles mapped from a verified token's groups; for a trusted user they
    echo ``policy.users`` and are informational, since policy reads ``policy.users`` itself.
    """

    user: str
    roles: tuple[str, ...]
    source: IdentitySource
    issuer: str = ""
    subject: str = ""


def trusted_identity(user: str, policy: PolicyConfig | None = None) -> Identity:
    """The identity of a user id vouched for by a trusted back-end."""
    _check_user_id(user)
    assigned = policy.users.get(user) if policy is not None else None
    return Identity(user=user, roles=(assigned,) if assigned else (), source="trusted")


def _check_user_id(user: str) -> None:
    if not isinstance(user, str) or not user.strip():
        raise IdentityRejected(RejectReason.NO_IDENTITY)
    if len(user) > MAX_USER_CHARS or not user.isprintable():
        # User ids end up in audit records and terminal output: no control characters.
        raise IdentityRejected(
            RejectReason.MALFORMED,
            f"user ids are at most {MAX_USER_CHARS} printable characters",
        )


# --------------------------------------------------------------------------- fetching


Fetch = Callable[[str], bytes]
"""``fetch(url) -> body``: raises :class:`IdentityProviderError` on any failure."""


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        # A redirect to http:// would let anyone on the path substitute the signing keys.
        if urllib.parse.urlsplit(newurl).scheme != "https":
            raise IdentityProviderError(
                f"the IdP redirected {_host(req.full_url)} to a non-HTTPS URL",
                hint="signing keys are only fetched over HTTPS",
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def https_fetcher(*, ca_bundle: str = "", timeout_s: float = 5.0) -> Fetch:
    """A fetcher that speaks HTTPS only, verifies TLS (optionally against ``ca_bundle``)."""
    try:
        context = ssl.create_default_context(cafile=ca_bundle or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"identity.ca_bundle: cannot load CA bundle {ca_bundle!r}: {exc}",
            hint="point it at a PEM file of CA certificates",
        ) from exc
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _HttpsOnlyRedirects()
    )

    def fetch(url: str) -> bytes:
        require_https(url, "URL")
        # The scheme was checked just above: only https:// reaches urlopen.
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        try:
            with opener.open(request, timeout=timeout_s) as response:
                body: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise IdentityProviderError(
                f"the IdP answered HTTP {exc.code} for {_host(url)}{_path(url)}",
                hint="check identity.issuer / identity.jwks_url and the IdP's status",
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IdentityProviderError(
                f"cannot reach the IdP at {_host(url)}: {reason}",
                hint="check the network, identity.ca_bundle and the IdP's status",
            ) from exc
        if len(body) > MAX_DOCUMENT_BYTES:
            raise IdentityProviderError(f"the IdP's document at {_host(url)} is too large")
        return body

    return fetch


def require_https(url: str, what: str) -> None:
    """Refuse anything but an ``https://`` URL with a host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise IdentityProviderError(
            f"refusing to fetch signing keys from a non-HTTPS {what} ({_host(url) or 'no host'})",
            hint="identity.issuer and identity.jwks_url must be https:// URLs",
        )


def _host(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IdentityProviderError(f"the IdP's {what} is not valid JSON") from exc
    if not isinstance(data, dict):
        raise IdentityProviderError(f"the IdP's {what} is not a JSON object")
    return data


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    kty: str
    crv: str
    alg: str  # the JWK's own "alg", empty when it does not pin one
    key: Any  # a cryptography public key


def _algorithm_fits(key: _Key, alg: str) -> bool:
    if key.alg and key.alg != alg:
        return False
    if key.kty == "RSA":
        return alg in _RSA_ALGORITHMS
    if key.kty == "EC":
        return _EC_ALGORITHMS.get(key.crv) == alg
    if key.kty == "OKP":
        return key.crv in _OKP_CURVES and alg == "EdDSA"
    return False


class OidcVerifier:
    """Verifies caller JWTs against an OIDC issuer. Thread-safe; keep one per issuer.

    ``fetch`` and ``clock`` are injectable for tests and for callers with their own HTTP stack;
    ``clock`` drives the JWKS cache only (PyJWT checks ``exp``/``nbf`` against the real time).
    """

    def __init__(
        self,
        config: IdentityConfig,
        *,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        validate_identity_config(config)
        self._config = config
        self._fetch = fetch or https_fetcher(ca_bundle=config.ca_bundle, timeout_s=config.timeout_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._last_error: IdentityProviderError | None = None
        self._jwks_url = config.jwks_url
        self.fetch_count = 0  # JWKS fetches so far: for tests and metrics

    @property
    def issuer(self) -> str:
        return self._config.issuer

    def verify(self, token: str) -> Identity:
        """The identity in a valid token; :class:`IdentityRejected` with the reason otherwise.

        Raises :class:`IdentityProviderError` when the IdP cannot be reached and no usable key
        is cached: callers must treat that as a denial too (fail closed).
        """
        import jwt

        token = _strip_bearer(token)
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise IdentityRejected(RejectReason.MALFORMED)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise IdentityRejected(RejectReason.MALFORMED) from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._config.algorithms:
            # Covers "none" and every HS*: validate_identity_config keeps them out of the list.
            raise IdentityRejected(
                RejectReason.DISALLOWED_ALGORITHM,
                f"allowed: {', '.join(self._config.algorithms)}",
            )
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            raise IdentityRejected(RejectReason.MALFORMED)
        key = self._key_for(kid, alg)
        if not _algorithm_fits(key, alg):
            raise IdentityRejected(
                RejectReason.DISALLOWED_ALGORITHM, "it does not match the signing key's type"
            )
        claims = self._decode(token, key, alg)
        return self._identity(claims)

    # ----------------------------------------------------------------- keys

    def _key_for(self, kid: str | None, alg: str) -> _Key:
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._config.jwks_cache_s
            if stale:
                if self._last_error is not None and now - (self._last_attempt or 0.0) < min(
                    self._config.jwks_min_refresh_s, _FAILURE_BACKOFF_S
                ):
                    # The IdP just failed: every waiting caller retrying at once would pile
                    # onto an IdP that is already struggling.
                    raise IdentityProviderError(
                        self._last_error.message, hint=self._last_error.hint
                    )
                self._refresh(now)
            found = self._lookup(kid, alg)
            if found is not None:
                return found
            # Unknown kid: the IdP may have rotated its keys. Refetch, but not more often than
            # jwks_min_refresh_s, whoever asks.
            if not stale and self._may_refresh(now):
                self._refresh(now)
                found = self._lookup(kid, alg)
                if found is not None:
                    return found
        raise IdentityRejected(RejectReason.UNKNOWN_SIGNER)

    def _may_refresh(self, now: float) -> bool:
        return self._last_attempt is None or (
            now - self._last_attempt >= self._config.jwks_min_refresh_s
        )

    def _lookup(self, kid: str | None, alg: str) -> _Key | None:
        if kid is not None:
            return self._keys.get(kid)
        # A token without kid is only unambiguous when one key could have signed it.
        fitting = [k for k in self._keys.values() if _algorithm_fits(k, alg)]
        return fitting[0] if len(fitting) == 1 else None

    def _refresh(self, now: float) -> None:
        self._last_attempt = now
        try:
            url = self._jwks_url or self._discover()
            require_https(url, "jwks_uri")
            self.fetch_count += 1
            keys = _parse_jwks(_json_object(self._fetch(url), "JWKS"))
        except IdentityProviderError as exc:
            self._last_error = exc
            raise
        self._last_error = None
        self._jwks_url = url
        self._keys = keys
        self._fetched_at = now

    def _discover(self) -> str:
        issuer = self._config.issuer.rstrip("/")
        url = f"{issuer}/.well-known/openid-configuration"
        require_https(url, "issuer")
        document = _json_object(self._fetch(url), "openid-configuration")
        # OIDC Discovery 1.0 §4.3: the document must name the issuer it was fetched for,
        # otherwise one tenant's keys could be passed off as another's.
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise IdentityProviderError(
                "the IdP's openid-configuration names a different issuer",
                hint="identity.issuer must be exactly the issuer the IdP reports",
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise IdentityProviderError("the IdP's openid-configuration has no jwks_uri")
        return jwks_uri

    # ----------------------------------------------------------------- claims

    def _decode(self, token: str, key: _Key, alg: str) -> dict[str, Any]:
        import jwt

        config = self._config
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_s,
                options={"require": ["exp", "iss", "aud"], "verify_sub": False},
            )
        except jwt.ExpiredSignatureError:
            raise IdentityRejected(RejectReason.EXPIRED) from None
        except jwt.ImmatureSignatureError:
            raise IdentityRejected(RejectReason.NOT_YET_VALID) from None
        except jwt.InvalidAudienceError:
            raise IdentityRejected(RejectReason.WRONG_AUDIENCE) from None
        except jwt.InvalidIssuerError:
            raise IdentityRejected(RejectReason.WRONG_ISSUER) from None
        except jwt.InvalidSignatureError:
            raise IdentityRejected(RejectReason.BAD_SIGNATURE) from None
        except jwt.InvalidAlgorithmError:
            raise IdentityRejected(RejectReason.DISALLOWED_ALGORITHM) from None
        except jwt.MissingRequiredClaimError as exc:
            raise IdentityRejected(RejectReason.MISSING_CLAIM, exc.claim) from None
        except (jwt.InvalidTokenError, jwt.PyJWTError, ValueError, TypeError):
            # "from None": PyJWT's own exception text is not ours to vouch for.
            raise IdentityRejected(RejectReason.MALFORMED) from None
        return claims

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        config = self._config
        user = _claim(claims, config.user_claim)
        if not isinstance(user, str) or not user:
            raise IdentityRejected(RejectReason.MISSING_CLAIM, config.user_claim)
        _check_user_id(user)
        subject = claims.get("sub")
        groups: list[str] = []
        for name in (config.roles_claim, *config.roles_claims):
            groups.extend(_strings(_claim(claims, name)))
        roles: dict[str, None] = {}
        for group in groups:
            role = config.group_roles.get(group)
            if role:
                roles[role] = None
        return Identity(
            user=user,
            roles=tuple(roles),
            source="oidc",
            issuer=str(claims.get("iss", "")),
            subject=subject if isinstance(subject, str) else "",
        )


def _strip_bearer(token: object) -> str:
    if not isinstance(token, str):
        return ""
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    # Exact names first: Auth0-style namespaced claims are URLs full of dots.
    if not name:
        return None
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        # Some IdPs send a single group as a string, some a space-separated list (like scope).
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _parse_jwks(document: Mapping[str, Any]) -> dict[str, _Key]:
    import jwt

    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list):
        raise IdentityProviderError("the IdP's JWKS has no 'keys' array")
    keys: dict[str, _Key] = {}
    for index, raw in enumerate(raw_keys):
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        kty = raw.get("kty")
        if kty not in ("RSA", "EC", "OKP"):
            continue  # symmetric or unknown key types never verify caller tokens
        try:
            parsed = jwt.PyJWK(raw)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue  # one odd key must not lock everybody out
        kid = raw.get("kid")
        name = kid if isinstance(kid, str) else f"#{index}"
        alg = raw.get("alg")
        keys[name] = _Key(
            kid=name,
            kty=str(kty),
            crv=str(raw.get("crv", "")),
            alg=alg if isinstance(alg, str) else "",
            key=parsed.key,
        )
    return keys


# --------------------------------------------------------------------------- config


def validate_identity_config(config: IdentityConfig, *, path: str | None = None) -> None:
    """Raise :class:`ConfigError` naming the key for settings that would weaken verification."""
    try:
        _validate_identity_config(config)
    except ConfigError as exc:
        if path is None:
            raise
        raise ConfigError(exc.message, path=path, hint=exc.hint) from None


def _validate_identity_config(config: IdentityConfig) -> None:
    if not config.issuer:
        raise ConfigError(
            "identity.issuer is empty: OIDC tokens cannot be verified",
            hint="set identity.issuer, or identify callers by user id",
        )
    if not config.audience:
        # Without an audience check, any token the IdP issued for any app would be accepted.
        raise ConfigError(
            "identity.audience is empty",
            hint="set it to the client id / audience your IdP puts in caller tokens",
        )
    for alg in config.algorithms:
        if alg.lower() == "none" or alg.upper().startswith("HS"):
            raise ConfigError(
                f"identity.algorithms: {alg!r} is never accepted",
                hint="caller tokens are verified with the IdP's public keys: use RS256, ES256 "
                "or EdDSA",
            )
        if alg not in SUPPORTED_ALGORITHMS:
            raise ConfigError(
                f"identity.algorithms: unknown algorithm {alg!r}",
                hint="supported: " + ", ".join(sorted(SUPPORTED_ALGORITHMS)),
            )
    if not config.algorithms:
        raise ConfigError("identity.algorithms is empty", hint="e.g. ['RS256']")
    if not config.issuer:
        raise ConfigError(
            "identity.issuer is not set",
            hint="tokens are accepted only from the issuer named there; identity.jwks_url alone "
            "would trust any issuer the keys sign for",
        )
    if config.jwks_url:
        scheme = urllib.parse.urlsplit(config.jwks_url).scheme
        if scheme != "https":
            raise ConfigError(
                "identity.jwks_url must be an https:// URL",
                hint="signing keys fetched over plain HTTP could be swapped in transit",
            )
    elif urllib.parse.urlsplit(config.issuer).scheme != "https":
        raise ConfigError(
            "identity.issuer must be an https:// URL to discover its JWKS",
            hint="or set identity.jwks_url to the issuer's https:// JWKS",
        )
    if config.leeway_s < 0 or config.leeway_s > 600:
        raise ConfigError("identity.leeway_s must be between 0 and 600 seconds")
    if config.jwks_min_refresh_s < 0 or config.jwks_cache_s <= 0:
        raise ConfigError("identity.jwks_cache_s must be > 0 and identity.jwks_min_refresh_s >= 0")
    if not config.user_claim:
        raise ConfigError("identity.user_claim is empty", hint="e.g. 'sub' or 'email'")


def oidc_verifier(config: IdentityConfig) -> OidcVerifier | None:
    """The verifier ``[identity]`` configures, or None when it configures no OIDC at all.

    The one place a verifier is built from configuration, so the audited client and the proxy
    accept exactly the same tokens; a half-configured identity (a JWKS URL without its issuer)
    is a configuration error for both, never a silent "no OIDC".
    """
    if not (config.issuer or config.jwks_url):
        return None
    return OidcVerifier(config)


def resolve_identity(
    *,
    user: str | None = None,
    token: str | None = None,
    verifier: OidcVerifier | None = None,
    policy: PolicyConfig | None = None,
) -> Identity:
    """The caller's identity from a token (verified) or a trusted user id.

    When both are given the token decides, and the user id must name the same user: a
    caller cannot borrow someone else's token under their own name or vice versa.
    """
    if token:
        if verifier is None:
            raise IdentityRejected(RejectReason.OIDC_NOT_CONFIGURED)
        identity = verifier.verify(token)
        if user and user != identity.user:
            raise IdentityRejected(RejectReason.USER_MISMATCH)
        return identity
    if user:
        return trusted_identity(user, policy)
    raise IdentityRejected(RejectReason.NO_IDENTITY)

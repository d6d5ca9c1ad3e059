"""OIDC verification against a real HTTPS IdP on loopback (see tests/fixtures/oidc.py)."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from typing import Any

import pytest

from claudesec.config import IdentityConfig, PolicyConfig
from claudesec.errors import ConfigError, ExitCode
from claudesec.guard.identity import (
    Identity,
    IdentityProviderError,
    IdentityRejected,
    OidcVerifier,
    RejectReason,
    resolve_identity,
    trusted_identity,
    validate_identity_config,
)
from tests.fixtures.oidc import (
    DISCOVERY_PATH,
    JWKS_PATH,
    FakeIdp,
    b64url,
    hmac_token,
    make_key,
    unsigned_token,
)


class Clock:
    """A hand-driven monotonic clock for the JWKS cache."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(oidc_idp: FakeIdp, clock: Clock) -> OidcVerifier:
    return OidcVerifier(oidc_idp.identity_config(), clock=clock)


def rejected(verifier: OidcVerifier, token: str) -> IdentityRejected:
    with pytest.raises(IdentityRejected) as info:
        verifier.verify(token)
    exc = info.value
    # The token, and each of its parts, must never be echoed: messages end up in logs.
    for text in (str(exc), exc.message, repr(exc.args)):
        for part in [token, *[p for p in token.split(".") if len(p) > 8]]:
            assert part not in text
    assert exc.exit_code == ExitCode.FOUND
    return exc


# --------------------------------------------------------------------------- accepted


def test_valid_rsa_token_is_accepted_with_roles_mapped_via_discovery(
    oidc_idp: FakeIdp, verifier: OidcVerifier
) -> None:
    identity = verifier.verify(oidc_idp.token())
    assert identity == Identity(
        user="alice@example.com",
        roles=("analyst",),
        source="oidc",
        issuer=oidc_idp.issuer,
        subject="alice@example.com",
    )
    assert oidc_idp.hits[DISCOVERY_PATH] == 1
    assert oidc_idp.hits[JWKS_PATH] == 1


def test_valid_ec_and_eddsa_tokens_are_accepted(oidc_idp: FakeIdp, clock: Clock) -> None:
    ed = make_key("ed25519", "ed-1")
    oidc_idp.publish(oidc_idp.rsa_key, oidc_idp.ec_key, ed)
    verifier = OidcVerifier(oidc_idp.identity_config(), clock=clock)
    assert verifier.verify(oidc_idp.token(oidc_idp.ec_key)).user == "alice@example.com"
    assert verifier.verify(oidc_idp.token(ed)).roles == ("analyst",)


def test_signing_keys_are_cached_between_tokens(
    oidc_idp: FakeIdp, verifier: OidcVerifier, clock: Clock
) -> None:
    for _ in range(5):
        verifier.verify(oidc_idp.token())
    assert oidc_idp.hits[JWKS_PATH] == 1
    clock.now += 3600  # identity.jwks_cache_s
    verifier.verify(oidc_idp.token())
    assert oidc_idp.hits[JWKS_PATH] == 2


def test_entra_app_roles_and_group_guids_both_map(oidc_idp: FakeIdp, clock: Clock) -> None:
    config = oidc_idp.identity_config(
        roles_claims=("roles",),
        group_roles={"Claudesec.Analyst": "analyst", "0b5a-guid-admins": "admin"},
        user_claim="preferred_username",
    )
    token = oidc_idp.token(
        preferred_username="bob@contoso.example",
        roles=["Claudesec.Analyst"],
        groups=["0b5a-guid-admins", "ffff-unmapped"],
    )
    identity = OidcVerifier(config, clock=clock).verify(token)
    assert identity.user == "bob@contoso.example"
    assert identity.subject == "alice@example.com"
    assert identity.roles == ("admin", "analyst")


def test_nested_and_namespaced_role_claims(oidc_idp: FakeIdp, clock: Clock) -> None:
    config = oidc_idp.identity_config(
        roles_claim="realm_access.roles",
        roles_claims=("https://example.com/groups",),
        group_roles={"kc-admin": "admin", "auth0-analysts": "analyst"},
    )
    namespaced: dict[str, Any] = {"https://example.com/groups": "auth0-analysts other"}
    token = oidc_idp.token(realm_access={"roles": ["kc-admin"]}, **namespaced)
    assert OidcVerifier(config, clock=clock).verify(token).roles == ("admin", "analyst")


def test_clock_skew_within_leeway_is_tolerated(oidc_idp: FakeIdp, verifier: OidcVerifier) -> None:
    now = int(time.time())
    assert verifier.verify(oidc_idp.token(exp=now - 30)).user
    assert verifier.verify(oidc_idp.token(nbf=now + 30)).user


def test_bearer_prefix_is_accepted(oidc_idp: FakeIdp, verifier: OidcVerifier) -> None:
    assert verifier.verify("Bearer " + oidc_idp.token()).user == "alice@example.com"


# --------------------------------------------------------------------------- rejected


def test_forged_signature_is_rejected(oidc_idp: FakeIdp, verifier: OidcVerifier) -> None:
    impostor = make_key("rsa", oidc_idp.rsa_key.kid)  # same kid, different private key
    exc = rejected(verifier, oidc_idp.token(impostor))
    assert exc.reason is RejectReason.BAD_SIGNATURE


def test_tampered_payload_is_rejected(oidc_idp: FakeIdp, verifier: OidcVerifier) -> None:
    header, _, signature = oidc_idp.token().split(".")
    forged_claims = oidc_idp.token(groups=["0b5a-guid-admins"]).split(".")[1]
    exc = rejected(verifier, f"{header}.{forged_claims}.{signature}")
    assert exc.reason is RejectReason.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": -3600}, RejectReason.EXPIRED),
        ({"nbf": 3600}, RejectReason.NOT_YET_VALID),
        ({"iss": "https://evil.example"}, RejectReason.WRONG_ISSUER),
        ({"aud": "some-other-app"}, RejectReason.WRONG_AUDIENCE),
        ({"exp": None}, RejectReason.MISSING_CLAIM),
        ({"sub": None}, RejectReason.MISSING_CLAIM),
    ],
)
def test_claim_problems_are_rejected_with_a_specific_reason(
    oidc_idp: FakeIdp,
    verifier: OidcVerifier,
    claims: dict[str, Any],
    reason: RejectReason,
) -> None:
    now = int(time.time())
    adjusted: dict[str, Any] = {k: now + v if isinstance(v, int) else v for k, v in claims.items()}
    exc = rejected(verifier, oidc_idp.token(**adjusted))
    assert exc.reason is reason
    assert reason.value in str(exc)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_rejected_without_fetching_keys(
    oidc_idp: FakeIdp, verifier: OidcVerifier, alg: str
) -> None:
    token = unsigned_token({"alg": alg, "kid": "rsa-1", "typ": "JWT"}, oidc_idp.claims())
    exc = rejected(verifier, token)
    assert exc.reason is RejectReason.DISALLOWED_ALGORITHM
    assert oidc_idp.hits[JWKS_PATH] == 0


def test_hs256_signed_with_the_public_key_is_rejected(
    oidc_idp: FakeIdp, verifier: OidcVerifier
) -> None:
    key = oidc_idp.rsa_key
    for secret in (key.public_pem(), key.public_pem().strip()):
        token = hmac_token({"alg": "HS256", "kid": key.kid}, oidc_idp.claims(), secret)
        assert rejected(verifier, token).reason is RejectReason.DISALLOWED_ALGORITHM


def test_algorithm_must_match_the_key_type(oidc_idp: FakeIdp, verifier: OidcVerifier) -> None:
    # An ES256 token naming the RSA key's kid: allowed algorithm, wrong key for it.
    token = oidc_idp.token(oidc_idp.ec_key, kid=oidc_idp.rsa_key.kid)
    assert rejected(verifier, token).reason is RejectReason.DISALLOWED_ALGORITHM


def test_algorithm_outside_the_allow_list_is_rejected(oidc_idp: FakeIdp, clock: Clock) -> None:
    verifier = OidcVerifier(oidc_idp.identity_config(algorithms=("ES256",)), clock=clock)
    assert rejected(verifier, oidc_idp.token()).reason is RejectReason.DISALLOWED_ALGORITHM


@pytest.mark.parametrize(
    "token",
    ["", "not-a-jwt", "a.b.c", "x" * 20000, b64url({"alg": "RS256"}) + ".e30.sig.extra"],
)
def test_malformed_tokens_are_rejected(verifier: OidcVerifier, token: str) -> None:
    with pytest.raises(IdentityRejected) as info:
        verifier.verify(token)
    assert info.value.reason is RejectReason.MALFORMED
    if token:
        assert token not in str(info.value)


def test_unknown_kid_refetches_once_then_is_rejected_and_rate_limited(
    oidc_idp: FakeIdp, verifier: OidcVerifier, clock: Clock
) -> None:
    verifier.verify(oidc_idp.token())
    assert oidc_idp.hits[JWKS_PATH] == 1
    stranger = make_key("ec", "never-published")
    exc = rejected(verifier, oidc_idp.token(stranger))
    assert exc.reason is RejectReason.UNKNOWN_SIGNER
    # A spray of random kids right after costs the IdP nothing more.
    clock.now += 30
    for n in range(20):
        rejected(verifier, oidc_idp.token(stranger, kid=f"random-{n}"))
    assert oidc_idp.hits[JWKS_PATH] == 1
    clock.now += 60  # identity.jwks_min_refresh_s since the last fetch
    rejected(verifier, oidc_idp.token(stranger))
    assert oidc_idp.hits[JWKS_PATH] == 2


def test_first_unknown_kid_after_a_quiet_period_refetches(
    oidc_idp: FakeIdp, verifier: OidcVerifier, clock: Clock
) -> None:
    verifier.verify(oidc_idp.token())
    clock.now += 120
    stranger = make_key("ec", "never-published")
    assert rejected(verifier, oidc_idp.token(stranger)).reason is RejectReason.UNKNOWN_SIGNER
    assert oidc_idp.hits[JWKS_PATH] == 2  # one refetch for the unknown kid


def test_key_rotation_at_the_idp_is_picked_up(
    oidc_idp: FakeIdp, verifier: OidcVerifier, clock: Clock
) -> None:
    verifier.verify(oidc_idp.token())
    rotated = make_key("rsa", "rsa-2")
    oidc_idp.publish(rotated, oidc_idp.ec_key)  # rsa-1 retired
    clock.now += 61
    assert verifier.verify(oidc_idp.token(rotated)).user == "alice@example.com"
    assert oidc_idp.hits[JWKS_PATH] == 2
    # The retired key is gone from the refreshed set: its tokens no longer verify.
    clock.now += 61
    assert rejected(verifier, oidc_idp.token()).reason is RejectReason.UNKNOWN_SIGNER


def test_token_without_kid_uses_the_only_fitting_key(
    oidc_idp: FakeIdp, verifier: OidcVerifier
) -> None:
    import jwt

    token = jwt.encode(oidc_idp.claims(), oidc_idp.ec_key.private_key, algorithm="ES256")
    assert verifier.verify(token).user == "alice@example.com"


# --------------------------------------------------------------------------- the IdP itself


def test_http_jwks_url_is_refused_by_config() -> None:
    config = IdentityConfig(
        issuer="https://idp.example", audience="a", jwks_url="http://idp.example/keys"
    )
    with pytest.raises(ConfigError, match=r"identity\.jwks_url must be an https://"):
        OidcVerifier(config)


def test_http_jwks_uri_from_discovery_is_refused(oidc_idp: FakeIdp, verifier: OidcVerifier) -> None:
    oidc_idp.jwks_uri_override = f"http://127.0.0.1:{oidc_idp.port}{JWKS_PATH}"
    with pytest.raises(IdentityProviderError, match="non-HTTPS") as info:
        verifier.verify(oidc_idp.token())
    assert info.value.exit_code == ExitCode.EXTERNAL
    assert oidc_idp.hits[JWKS_PATH] == 0


def test_redirect_to_http_is_refused(oidc_idp: FakeIdp, clock: Clock) -> None:
    oidc_idp.redirects["/moved"] = f"http://127.0.0.1:{oidc_idp.port}{JWKS_PATH}"
    config = oidc_idp.identity_config(jwks_url=oidc_idp.url("/moved"))
    with pytest.raises(IdentityProviderError, match="non-HTTPS"):
        OidcVerifier(config, clock=clock).verify(oidc_idp.token())
    assert oidc_idp.hits[JWKS_PATH] == 0


def test_explicit_jwks_url_skips_discovery(oidc_idp: FakeIdp, clock: Clock) -> None:
    config = oidc_idp.identity_config(jwks_url=oidc_idp.jwks_url)
    assert OidcVerifier(config, clock=clock).verify(oidc_idp.token()).user
    assert oidc_idp.hits[DISCOVERY_PATH] == 0


def test_jwks_server_down_is_a_clear_external_error(oidc_idp: FakeIdp, clock: Clock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = oidc_idp.identity_config(issuer=f"https://127.0.0.1:{closed_port}")
    token = oidc_idp.token(iss=config.issuer)
    with pytest.raises(IdentityProviderError) as info:
        OidcVerifier(config, clock=clock).verify(token)
    assert info.value.exit_code == ExitCode.EXTERNAL
    assert f"cannot reach the IdP at https://127.0.0.1:{closed_port}" in str(info.value)
    assert token not in str(info.value)


def test_idp_errors_are_external_and_retried_only_after_a_backoff(
    oidc_idp: FakeIdp, verifier: OidcVerifier, clock: Clock
) -> None:
    oidc_idp.fail_status = 503
    for _ in range(3):
        with pytest.raises(IdentityProviderError, match="HTTP 503"):
            verifier.verify(oidc_idp.token())
    assert oidc_idp.hits[DISCOVERY_PATH] == 1
    oidc_idp.fail_status = None
    clock.now += 6
    assert verifier.verify(oidc_idp.token()).user


def test_untrusted_tls_certificate_is_refused(oidc_idp: FakeIdp, clock: Clock) -> None:
    config = oidc_idp.identity_config(ca_bundle="")  # system CAs do not know our test CA
    with pytest.raises(IdentityProviderError, match="cannot reach the IdP"):
        OidcVerifier(config, clock=clock).verify(oidc_idp.token())


def test_discovery_naming_another_issuer_is_refused(oidc_idp: FakeIdp, clock: Clock) -> None:
    config = oidc_idp.identity_config(issuer=oidc_idp.issuer + "/tenant-b")
    with pytest.raises(IdentityProviderError):
        OidcVerifier(config, clock=clock).verify(oidc_idp.token(iss=config.issuer))


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"algorithms": ("RS256", "HS256")}, "identity.algorithms"),
        ({"algorithms": ("none",)}, "identity.algorithms"),
        ({"algorithms": ("RS257",)}, "identity.algorithms"),
        ({"algorithms": ()}, "identity.algorithms"),
        ({"audience": ""}, "identity.audience"),
        ({"issuer": ""}, "identity.issuer"),
        ({"issuer": "http://idp.example"}, "identity.issuer"),
        ({"leeway_s": -1}, "identity.leeway_s"),
        ({"user_claim": ""}, "identity.user_claim"),
    ],
)
def test_weak_identity_config_is_a_config_error_naming_the_key(
    overrides: dict[str, Any], key: str
) -> None:
    config = replace(IdentityConfig(issuer="https://idp.example", audience="a"), **overrides)
    with pytest.raises(ConfigError) as info:
        validate_identity_config(config, path="claudesec.toml")
    assert key in str(info.value)
    assert str(info.value).startswith("claudesec.toml: ")
    assert info.value.exit_code == ExitCode.USAGE


def test_missing_ca_bundle_is_a_config_error(oidc_idp: FakeIdp) -> None:
    with pytest.raises(ConfigError, match=r"identity\.ca_bundle"):
        OidcVerifier(oidc_idp.identity_config(ca_bundle="/nonexistent/ca.pem"))


# --------------------------------------------------------------------------- trusted users


def test_trusted_identity_takes_its_role_from_policy_users() -> None:
    policy = PolicyConfig(users={"svc-report": "analyst"})
    assert trusted_identity("svc-report", policy) == Identity(
        user="svc-report", roles=("analyst",), source="trusted"
    )
    assert trusted_identity("nobody", policy).roles == ()


@pytest.mark.parametrize("user", ["", "   ", "evil\x1b[2J", "u" * 300])
def test_bad_trusted_user_ids_are_rejected(user: str) -> None:
    with pytest.raises(IdentityRejected):
        trusted_identity(user)


def test_resolve_identity_prefers_the_token_and_refuses_a_mismatched_user(
    oidc_idp: FakeIdp, verifier: OidcVerifier
) -> None:
    token = oidc_idp.token()
    assert resolve_identity(token=token, verifier=verifier).source == "oidc"
    assert resolve_identity(user="alice@example.com", token=token, verifier=verifier).user
    with pytest.raises(IdentityRejected) as info:
        resolve_identity(user="mallory", token=token, verifier=verifier)
    assert info.value.reason is RejectReason.USER_MISMATCH
    with pytest.raises(IdentityRejected) as info:
        resolve_identity(token=token)
    assert info.value.reason is RejectReason.OIDC_NOT_CONFIGURED
    with pytest.raises(IdentityRejected) as info:
        resolve_identity()
    assert info.value.reason is RejectReason.NO_IDENTITY
    assert resolve_identity(user="svc").source == "trusted"

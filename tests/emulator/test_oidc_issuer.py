"""The loopback OIDC issuer: real HTTPS with its own CA, real JWKS, CI-shaped tokens, rotation."""

from __future__ import annotations

import json
import ssl
import stat
import urllib.error
import urllib.request
from typing import Any

import jwt
import pytest

from claudesec.emulator.oidc_issuer import DISCOVERY_PATH, OidcIssuer


def _get(url: str, context: ssl.SSLContext) -> Any:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read())


def _verify(issuer: OidcIssuer, token: str, audience: str = "https://api.anthropic.com") -> Any:
    """Verify as a relying party would: discovery, then JWKS, then the signature."""
    context = issuer.tls.client_context()
    document = _get(issuer.discovery_url, context)
    keys = jwt.PyJWKSet.from_dict(_get(document["jwks_uri"], context))
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    return jwt.decode(
        token, key=key, algorithms=[key.algorithm_name], audience=audience, issuer=issuer.issuer
    )


def test_discovery_is_served_over_https_trusted_only_through_the_generated_ca(
    ci_issuer: OidcIssuer,
) -> None:
    document = _get(ci_issuer.discovery_url, ci_issuer.tls.client_context())
    assert document["issuer"] == ci_issuer.issuer
    assert document["jwks_uri"] == ci_issuer.jwks_url
    assert ci_issuer.issuer.startswith("https://127.0.0.1:")
    # Without the generated CA the certificate is not trusted: the TLS is real.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(ci_issuer.discovery_url, ssl.create_default_context())
    assert ci_issuer.hits[DISCOVERY_PATH] == 1


def test_server_key_file_is_private(ci_issuer: OidcIssuer) -> None:
    assert stat.S_IMODE(ci_issuer.tls.key_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("kwargs", "subject"),
    [
        ({"environment": "prod"}, "repo:acme/app:environment:prod"),
        ({"event_name": "pull_request"}, "repo:acme/app:pull_request"),
        ({"ref": "refs/heads/main"}, "repo:acme/app:ref:refs/heads/main"),
        ({"ref": "refs/tags/v1.2.0"}, "repo:acme/app:ref:refs/tags/v1.2.0"),
    ],
)
def test_github_actions_token_has_githubs_subject_forms_and_claims(
    ci_issuer: OidcIssuer, kwargs: dict[str, Any], subject: str
) -> None:
    claims = _verify(ci_issuer, ci_issuer.github_actions("acme/app", **kwargs))
    assert claims["sub"] == subject
    assert claims["repository"] == "acme/app"
    assert claims["repository_owner"] == "acme"
    assert claims["job_workflow_ref"].startswith("acme/app/.github/workflows/")
    for name in ("ref", "sha", "repository_id", "repository_owner_id", "run_id", "jti"):
        assert claims[name]
    assert claims.get("environment") == kwargs.get("environment")
    assert claims["exp"] - claims["iat"] == 300


def test_gitlab_ci_token_has_gitlabs_subject_and_claims(ci_issuer: OidcIssuer) -> None:
    token = ci_issuer.gitlab_ci("acme/platform/app", ref="v2", ref_type="tag")
    claims = _verify(ci_issuer, token)
    assert claims["sub"] == "project_path:acme/platform/app:ref_type:tag:ref:v2"
    assert claims["project_path"] == "acme/platform/app"
    assert claims["namespace_path"] == "acme/platform"
    assert claims["ref_type"] == "tag"
    assert claims["ref_path"] == "refs/tags/v2"
    assert claims["ref_protected"] == "false"


def test_kubernetes_token_has_the_service_account_subject_and_nested_claim(
    ci_issuer: OidcIssuer,
) -> None:
    claims = _verify(ci_issuer, ci_issuer.kubernetes("payments", "api", pod="api-7f9"))
    assert claims["sub"] == "system:serviceaccount:payments:api"
    assert claims["aud"] == ["https://api.anthropic.com"]
    k8s = claims["kubernetes.io"]
    assert k8s["namespace"] == "payments"
    assert k8s["serviceaccount"]["name"] == "api"
    assert k8s["pod"]["name"] == "api-7f9"


def test_rotation_publishes_both_keys_then_retires_the_old_one(ci_issuer: OidcIssuer) -> None:
    old_token = ci_issuer.kubernetes()
    old_kid = ci_issuer.current_key.kid
    new_key = ci_issuer.rotate()
    new_token = ci_issuer.kubernetes()
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid != old_kid
    assert {k["kid"] for k in ci_issuer.jwks()["keys"]} == {old_kid, new_key.kid}
    _verify(ci_issuer, old_token)  # both verify during the rollover
    _verify(ci_issuer, new_token)
    ci_issuer.retire(old_kid)
    assert [k["kid"] for k in ci_issuer.jwks()["keys"]] == [new_key.kid]
    with pytest.raises(StopIteration):
        _verify(ci_issuer, old_token)
    with pytest.raises(ValueError, match="current"):
        ci_issuer.retire(new_key.kid)


def test_issuer_with_a_path_serves_discovery_under_it() -> None:
    with OidcIssuer(path="tenant-a", key_type="ec") as issuer:
        assert issuer.issuer.endswith("/tenant-a")
        claims = _verify(issuer, issuer.gitlab_ci())
        assert claims["iss"] == issuer.issuer
        assert jwt.get_unverified_header(issuer.gitlab_ci())["alg"] == "ES256"

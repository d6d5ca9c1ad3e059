"""Credential files as people commit them, made by the tools that write them: every one is
found by its rule, encrypted keys at lower severity, and their look-alikes are not."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator

import pytest

from claudesec.detect.catalogue import DETECTORS, DETECTORS_BY_ID
from claudesec.detect.engine import Engine, hyperscan_available
from claudesec.detect.rules import Severity
from tests.fixtures.credentials import CredentialFile, CredentialMaker
from tests.fixtures.keys import KeyFactory

BACKENDS = ["python", "hyperscan"] if hyperscan_available() else ["python"]


@pytest.fixture(scope="module")
def maker() -> Iterator[CredentialMaker]:
    made = CredentialMaker(16)
    yield made
    made.close()


@pytest.fixture(scope="module")
def files(maker: CredentialMaker) -> list[CredentialFile]:
    return maker.every_file()


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Engine:
    return Engine(backend=request.param)


def _rules(engine: Engine, text: str) -> list[str]:
    return [hit.rule_id for hit in engine.find(text.encode())]


def test_every_credential_file_is_found_by_its_rule(
    engine: Engine, files: list[CredentialFile]
) -> None:
    missed = [str(f) for f in files if f.rule not in _rules(engine, f.text)]
    assert missed == []
    assert len({f.kind for f in files}) >= 50


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
def test_ssh_keygen_keys_are_found_despite_their_aaaaaa_runs(
    engine: Engine, maker: CredentialMaker, kind: str
) -> None:
    # The regression: every OpenSSH body holds `AAAAAA` (big-endian lengths), which the old
    # placeholder filter took for filler, so 0 of 3 ssh-keygen keys were reported.
    made = maker.ssh_keygen(kind)
    assert "AAAAAA" in made.text
    hits = engine.find(made.text.encode())
    assert [h.rule_id for h in hits] == ["private-key"]
    assert hits[0].detector.severity is Severity.CRITICAL


def test_passphrase_protected_keys_are_reported_at_low_severity(
    engine: Engine, maker: CredentialMaker
) -> None:
    encrypted = [
        maker.ssh_keygen("ed25519", passphrase="correct horse battery"),
        maker.openssl("pkcs8-encrypted"),
        maker.openssl("pkcs1-encrypted"),
    ]
    if shutil.which("puttygen"):
        encrypted.append(maker.puttygen("ed25519", passphrase="hunter2!"))
    for made in encrypted:
        assert _rules(engine, made.text) == ["private-key-encrypted"], made
    assert DETECTORS_BY_ID["private-key-encrypted"].severity is Severity.LOW


def test_claude_capable_credentials_come_first_in_the_catalogue() -> None:
    ids = [d.id for d in DETECTORS]
    claude = [
        "anthropic-admin-key",
        "anthropic-api-key",
        "anthropic-oauth-token",
        "anthropic-token",
        "aws-credentials",
        "aws-session-token",
        "aws-bedrock-api-key",
        "gcp-service-account-key",
        "azure-openai-key",
        "azure-ai-key-variable",
        "claudesec-proxy-token",
    ]
    assert max(ids.index(i) for i in claude) < ids.index("github-token")


def test_truncated_or_filler_key_blocks_are_not_keys(engine: Engine) -> None:
    begin, end = "-----BEGIN PRIVATE" + " KEY-----", "-----END PRIVATE" + " KEY-----"
    # A real key's first line only (a README excerpt): no DER structure covers it.
    excerpt = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" + "BKcwggSjAgEAAoIBAQC7"
    for body in (excerpt * 3, "A" * 64 * 4, "...", "<your key here>" * 5):
        assert _rules(engine, f"{begin}\n{body}\n{end}\n") == [], body[:10]
    escaped = json.dumps({"private_key": f"{begin}\n{excerpt * 3}\n{end}\n"})
    assert _rules(engine, escaped) == []


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "text",
    [
        # headers, templates and prose that only look like credentials
        "Authorization: Basic ${CREDENTIALS}",
        "Basic authentication is configured below",
        f"Authorization: Basic {_b64('user:changeme')}",
        f"Authorization: Basic {_b64('just-a-username')}",
        "Authorization: Bearer ${API_TOKEN}",
        "Authorization: Bearer <token>",
        'headers["Authorization"] = "Bearer " + self.access_token_from_environment',
        "Bearer abcdefghijklmnopqrstuvwxyz",
        # connection strings without a real password
        'conn = "Server=db;Database=app;User Id=app;Password=${DB_PASSWORD};"',
        "Password=correct; is what the form says",
        "jdbc:postgresql://db/app?user=app&password={{ db_password }}",
        # keyword arguments in code, beside a host: an argument, not a connection string
        'def mkdirs(path, share="C$", conn=None, host=None, username=None, password=None):',
        "connect(host=db_host, user=db_user, password=db_password_from_vault)",
        # credential files holding placeholders
        json.dumps({"auths": {"registry": {"auth": _b64("user:password")}}}),
        "machine api.internal login deploy password changeme",
        "//registry.npmjs.org/:_authToken=${NPM_TOKEN}",
        "curl -u admin:$ADMIN_PASSWORD https://ci.internal",
        "apiVersion: v1\nkind: Secret\nstringData:\n  password: ${PASSWORD}\n",
    ],
)
def test_credential_file_look_alikes_are_not_reported(engine: Engine, text: str) -> None:
    assert _rules(engine, text) == []


def test_kubernetes_secret_with_placeholder_data_is_not_a_secret_manifest(engine: Engine) -> None:
    text = "apiVersion: v1\nkind: Secret\ndata:\n  password: " + _b64("changeme") + "\n"
    assert "kubernetes-secret" not in _rules(engine, text)


def test_public_sample_google_api_keys_are_not_reported(engine: Engine) -> None:
    # Two of the sample keys that firebase-android-sdk documents (public by design), split so
    # this file never holds a key-shaped literal.
    samples = [
        "AI" + "zaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs",
        "AI" + "za" + "SyDMAScliyLx7F0NPDEJi1QmyCgHIAODrlU",
    ]
    for sample in samples:
        assert _rules(engine, f'apiKey: "{sample}"') == []
    generated = KeyFactory(16).google().value
    assert _rules(engine, f'apiKey: "{generated}"') == ["google-api-key"]


def test_anthropic_versions_of_more_than_two_digits(engine: Engine, maker: CredentialMaker) -> None:
    made = maker.anthropic_long_version()
    assert _rules(engine, made.text) == ["anthropic-api-key"]
    other = made.text.replace("api103-", "oat1001-")
    assert _rules(engine, other) == ["anthropic-oauth-token"]


@pytest.mark.parametrize(
    "text",
    [
        # identifiers and type names are not secrets
        '"subject_token": "subject_token_0",',
        "api_key_secret_version=TEST_SLACK_API_KEY_SECRET_VERSION_2",
        'tfResourceType = "aws_wafv2_api_key";',
        "credential_source=Ec2InstanceMetadata",
        '"X-aws-ec2-metadata-token-ttl-seconds": _IMDSV2_SESSION_TOKEN_TTL_SECONDS',
        # principals and cursors
        '"x-goog-credential": "svc-42@project-id.iam.gserviceaccount.com/20200123/auto/goog4"',
        '"nextSequenceToken": "49542672486831074009579604567900991230369019956308219826"',
        # words dressed up as passwords (leetspeak), bare words and code literals
        'password="N3wP@ssW0rd!"',
        '"processModel.password": "Sup3rS3cr3tP@ssW0rd",',
        "postgres://foo:bar@somehost:6379/0",
        "jdbc:postgresql://db/app;user=app;password=None;",
        "netrc.write('machine localhost login test password test')",
    ],
)
def test_identifiers_principals_and_words_are_not_secrets(engine: Engine, text: str) -> None:
    assert _rules(engine, text) == []

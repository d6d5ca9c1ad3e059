"""The detector catalogue: every kind found in every context, placeholders and decoys not,
the hyperscan and pure-Python prefilters agree, and no input crashes it."""

from __future__ import annotations

import base64
import json
import random
import string
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claudesec.detect.catalogue import DETECTORS, DETECTORS_BY_ID
from claudesec.detect.engine import Engine, find_secrets, hyperscan_available
from claudesec.detect.validators import base62_crc32, is_placeholder, is_wordy
from tests.fixtures.keys import (
    AWS_ID_PREFIX,
    KEY_MAKERS,
    FakeKey,
    KeyFactory,
    contexts,
    decoys,
    pem_footer,
    pem_header,
    placeholders,
)

BACKENDS = ["python", "hyperscan"] if hyperscan_available() else ["python"]


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Engine:
    return Engine(backend=request.param)


def _rules(engine: Engine, text: str) -> list[str]:
    return [hit.rule_id for hit in engine.find(text.encode())]


def test_catalogue_is_data_with_unique_ids_and_keywords() -> None:
    assert len(DETECTORS_BY_ID) == len(DETECTORS)
    for detector in DETECTORS:
        assert detector.keywords, detector.id
        assert "secret" in detector.regex.groupindex, detector.id
        assert detector.fix and detector.kind


@pytest.mark.parametrize("maker", KEY_MAKERS)
@pytest.mark.parametrize("context", sorted(contexts()))
def test_every_kind_is_found_in_every_context(engine: Engine, maker: str, context: str) -> None:
    key: FakeKey = getattr(KeyFactory(zlib.crc32(f"{maker}/{context}".encode())), maker)()
    text = contexts()[context](key.value)
    hits = [h for h in engine.find(text.encode()) if h.rule_id == key.rule]
    assert hits, f"{key} not found in {context}"
    if context not in ("notebook", "json") or key.rule != "private-key":
        assert any(h.secret.decode() in key.value for h in hits)


def test_anthropic_kinds_are_labelled(engine: Engine) -> None:
    factory = KeyFactory(3)
    labels = {
        factory.anthropic_api().value: "Anthropic API key",
        factory.anthropic_admin().value: "Anthropic Admin API key",
        factory.anthropic_oauth().value: "Anthropic OAuth token",
        factory.anthropic_other("sid01").value: "Anthropic sid01 token",
    }
    for value, label in labels.items():
        (hit,) = engine.find(f"x = '{value}'".encode())
        assert hit.kind == label


def test_api_key_of_the_wrong_length_is_still_reported_as_the_family(engine: Engine) -> None:
    value = KeyFactory(4).anthropic_api().value[:-10]
    (hit,) = engine.find(value.encode())
    assert hit.rule_id == "anthropic-token"


@pytest.mark.parametrize("text", placeholders(), ids=lambda t: t[:24])
def test_placeholders_are_not_findings(engine: Engine, text: str) -> None:
    assert _rules(engine, text) == []
    assert _rules(engine, f"KEY={text}\n") == []


def test_decoys_are_not_findings(engine: Engine) -> None:
    for text in decoys(KeyFactory(5)):
        assert _rules(engine, text) == [], text[:30]


def test_github_checksum_is_enforced(engine: Engine) -> None:
    key = KeyFactory(6).github_classic("gho").value
    assert _rules(engine, key) == ["github-token"]
    body = key[4:34]
    assert key[-6:] == base62_crc32(body.encode())
    broken = key[:10] + ("a" if key[10] != "a" else "b") + key[11:]
    assert _rules(engine, broken) == []


def test_aws_pair_is_one_finding_with_the_key_id_related(engine: Engine) -> None:
    key_id, secret = KeyFactory(7).aws_pair()
    for text in (
        f"[default]\naws_access_key_id = {key_id.value}\naws_secret_access_key = {secret.value}\n",
        f"User,{key_id.value},{secret.value}\n",
        f'{{"AccessKeyId": "{key_id.value}", "SecretAccessKey": "{secret.value}"}}',
    ):
        hits = engine.find(text.encode())
        assert [h.rule_id for h in hits] == ["aws-credentials"], text[:20]
        assert hits[0].secret.decode() == secret.value
        assert hits[0].related is not None and hits[0].related.decode() == key_id.value


def test_aws_secret_alone_by_name_and_bare_key_id(engine: Engine) -> None:
    factory = KeyFactory(8)
    secret = factory.aws_secret()
    assert _rules(engine, f"AWS_SECRET_ACCESS_KEY={secret}\n") == ["aws-secret-access-key"]
    assert _rules(engine, f"key id {factory.aws_key_id().value} only") == ["aws-access-key-id"]
    digest = "0123456789abcdef0123456789abcdef01234567"
    assert _rules(engine, f"AWS_SECRET_ACCESS_KEY={digest}\n") == []


def test_connection_url_password(engine: Engine) -> None:
    url, key = KeyFactory(9).connection_url()
    hits = engine.find(f"DATABASE_URL={url}\n".encode())
    assert [h.rule_id for h in hits] == ["connection-url-password"]
    assert hits[0].secret.decode() == key.value
    assert _rules(engine, "see http://localhost:8080/path and https://a.b/c@d") == []


@pytest.mark.parametrize(
    "template",
    [
        "DB_PASSWORD={v}\n",
        "export SERVICE_API_KEY={v}\n",
        "  password: {v}\n",
        'password = "{v}"\n',
        '{{"client_secret": "{v}"}}',
        "ENV APP_SECRET={v}\n",
        "GET /login?user=a&password={v}&x=1\n",
        "db:\r\n  password: {v}\r\n",
        '"source": ["PASSWORD = \\"{v}\\"\\n"]',
    ],
)
def test_generic_assignment_contexts(engine: Engine, template: str) -> None:
    key = KeyFactory(10).password()
    hits = engine.find(template.format(v=key.value).encode())
    assert [h.rule_id for h in hits] == ["generic-secret-assignment"]
    assert hits[0].secret.decode() == key.value


@pytest.mark.parametrize(
    "text",
    [
        "token = tokenizer.encode(text)",
        "password = os.environ['DB_PASSWORD']",
        'next_token = "AAAA1234bbbbCCCC5678"',
        'secret_arn = "arn:aws:secretsmanager:us-east-1:1:secret:x"',
        'api_key = "123e4567-e89b-12d3-a456-426614174000"',
        "max_tokens: 4096",
        'password = f"{prefix}-{suffix}1"',
        "the password is required for 12345 accounts",
    ],
)
def test_generic_assignment_ignores_code_and_ids(engine: Engine, text: str) -> None:
    assert _rules(engine, text) == []


def test_private_key_in_crlf_and_json_escaped_forms(engine: Engine) -> None:
    factory = KeyFactory(11)
    crlf = factory.private_key(newline="\r\n").value
    escaped = factory.private_key(newline="\\n").value
    assert _rules(engine, crlf) == ["private-key"]
    assert _rules(engine, f'{{"key": "{escaped}"}}') == ["private-key"]
    ec = factory.private_key(kind="EC").value
    assert _rules(engine, ec) == ["private-key"]
    assert _rules(engine, pem_header("") + "\n" + pem_footer("")) == []


def test_specific_rule_wins_over_generic(engine: Engine) -> None:
    key = KeyFactory(12).anthropic_api().value
    assert _rules(engine, f'ANTHROPIC_API_KEY="{key}"') == ["anthropic-api-key"]


def test_is_placeholder_rules() -> None:
    assert is_placeholder(b"XXXXXXXXXXXXXXXX")
    assert is_placeholder(b"your-api-key-goes-here")
    assert is_placeholder(b"abcdefghijklmnop")
    assert is_placeholder(b"${SECRET_VALUE}")
    assert not is_placeholder(b"q8Zr2LmN4vKp7XtB")


def test_find_secrets_on_str_gives_character_offsets() -> None:
    key = KeyFactory(13).anthropic_api().value
    text = f"préfixe é {key} suffix"
    (match,) = find_secrets(text)
    assert text[match.start : match.end] == key
    assert match.rule_id == "anthropic-api-key"
    assert key not in repr(match)
    (raw,) = find_secrets(text.encode())
    assert text.encode()[raw.start : raw.end] == key.encode()


def test_find_secrets_with_a_subset_of_detectors() -> None:
    key = KeyFactory(14).github_classic().value
    assert find_secrets(key, [DETECTORS_BY_ID["anthropic-api-key"]]) == []


def _planted_document(draw: st.DrawFn) -> tuple[bytes, set[str]]:
    factory = KeyFactory(draw(st.integers(0, 10_000)))
    chunks: list[bytes] = []
    planted: set[str] = set()
    for _ in range(draw(st.integers(0, 4))):
        chunks.append(draw(st.binary(max_size=200)).replace(b"\0", b" "))
        key = getattr(factory, draw(st.sampled_from(KEY_MAKERS)))()
        chunks.append(b"\n" + key.value.encode() + b"\n")
        planted.add(key.rule)
    chunks.append(draw(st.binary(max_size=200)).replace(b"\0", b" "))
    return b"".join(chunks), planted


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash_and_backends_agree(data: bytes) -> None:
    python = Engine(backend="python").find(data)
    for hit in python:
        assert data[hit.start : hit.end] == hit.secret
    if hyperscan_available():
        assert Engine(backend="hyperscan").find(data) == python


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.composite(_planted_document)())
def test_planted_keys_are_found_among_random_bytes(document: tuple[bytes, set[str]]) -> None:
    data, planted = document
    engine = Engine(backend="python")
    found = {hit.rule_id for hit in engine.find(data)}
    assert planted <= found
    if hyperscan_available():
        assert Engine(backend="hyperscan").find(data) == engine.find(data)


# ------------------------------------------------------------------ false-alarm filters
# Each filter below was added for a class of false alarm seen in real source trees; each has a
# decoy that the filter must drop and a real-looking secret in the same shape that must stay.


def _jwt(claims: dict[str, object], rng: random.Random) -> str:
    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    signature = "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(43))
    return b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims) + "." + signature


def test_jwt_without_registered_claims_is_still_a_token(engine: Engine) -> None:
    # Issued tokens often carry only custom claims (a user id, a role): replayable all the same.
    rng = random.Random(20)
    assert _rules(engine, _jwt({"some": "payload"}, rng)) == ["jwt"]
    assert _rules(engine, _jwt({"user_id": 42, "role": "admin"}, rng)) == ["jwt"]
    assert _rules(engine, _jwt({}, rng)) == []
    for claim in ("iss", "sub", "aud", "exp", "nbf", "iat", "jti"):
        assert _rules(engine, _jwt({claim: "x", "role": "anon"}, rng)) == ["jwt"], claim


def test_connection_url_to_a_documentation_domain_is_an_example(engine: Engine) -> None:
    _, key = KeyFactory(21).connection_url()
    for host in ("www.example.com", "example.org", "db.example", "artifactory.example.net"):
        assert _rules(engine, f"https://user:{key.value}@{host}/x") == [], host
    assert _rules(engine, f"https://user:{key.value}@db.test:5432/x") == []
    for host in ("db.internal", "example.com.evil.io", "examples.io"):
        assert _rules(engine, f"https://user:{key.value}@{host}/x") == [
            "connection-url-password"
        ], host


def test_connection_url_password_made_of_words_is_an_example(engine: Engine) -> None:
    assert _rules(engine, "postgres://app:" + "my" + "secret" + "password@db.internal/app") == []
    assert _rules(engine, "redis://:Some%20Kind%20Of%20Password1@cache.internal:6379") == []
    _, key = KeyFactory(22).connection_url()
    assert _rules(engine, f"redis://:{key.value}@cache.internal:6379") == [
        "connection-url-password"
    ]


def test_generic_value_under_a_qualified_type_name_is_not_a_credential(engine: Engine) -> None:
    rng = random.Random(23)
    digest = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    assert _rules(engine, f'"AWS::SecretsManager::Secret": "{digest}",\n') == []
    assert _rules(engine, f'"AWS::Location::APIKey": "{digest}",\n') == []
    assert _rules(engine, f'"secret": "{digest}",\n') == ["generic-secret-assignment"]
    assert _rules(engine, f'"Secrets:Secret": "{digest}",\n') == ["generic-secret-assignment"]


def test_domain_verification_tokens_are_public(engine: Engine) -> None:
    value = KeyFactory(24).password().value.replace("#", "+") + "="
    assert _rules(engine, f'{{"VerificationToken": "{value}"}}') == []
    assert _rules(engine, f"domain_verification_token = '{value}'") == []
    assert _rules(engine, f'{{"SessionToken": "{value}"}}') == ["generic-secret-assignment"]


@pytest.mark.parametrize(
    "text",
    [
        '"Password": "' + "SomeKind" + "OfPassword123!@#" + '",',
        '"LocalConsolePassword": "' + "PassWordMust" + "BeAtLeast6Chars." + '"',
        "        private_key: Ed25519PrivateKey | Ed448PrivateKey\n",
        'DB_PASSWORD="' + "my_super" + "_secret_password_2024" + '"\n',
    ],
)
def test_generic_values_made_of_words_are_examples(engine: Engine, text: str) -> None:
    assert _rules(engine, text) == []


def test_generic_random_values_with_some_words_still_count(engine: Engine) -> None:
    factory = KeyFactory(25)
    for _ in range(50):
        value = factory.password().value
        assert _rules(engine, f'password = "Secret{value}"\n') == ["generic-secret-assignment"]
        assert _rules(engine, f"API_KEY={value}Key\n") == ["generic-secret-assignment"]


def test_is_wordy_never_matches_random_tokens() -> None:
    rng = random.Random(26)
    alphabets = (
        string.ascii_letters + string.digits,
        string.ascii_lowercase,
        string.ascii_lowercase + string.digits,
        "0123456789abcdef",
        string.ascii_letters + string.digits + "+/",
    )
    for alphabet in alphabets:
        for length in (10, 16, 24, 32, 40):
            for _ in range(400):
                value = "".join(rng.choice(alphabet) for _ in range(length)).encode()
                assert not is_wordy(value), value
    assert is_wordy(b"ThisIsMySecretPassword")
    assert not is_wordy(b"Summer2024!")  # one word and digits: too little to call it prose


def test_aws_documentation_style_example_keys_are_placeholders(engine: Engine) -> None:
    rng = random.Random(27)
    key_id = AWS_ID_PREFIX + "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(9)
    )
    key_id += "EXAMPLE"
    body = "".join(rng.choice(string.ascii_letters + string.digits + "/") for _ in range(30))
    secret = body + "EXAMPLE" + "KEY"
    text = f"aws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    assert _rules(engine, text) == []
    real_id, real_secret = KeyFactory(27).aws_pair()
    text = f"aws_access_key_id = {real_id.value}\naws_secret_access_key = {real_secret.value}\n"
    assert _rules(engine, text) == ["aws-credentials"]


def test_aws_pair_does_not_swallow_what_lies_between_or_a_jwt(engine: Engine) -> None:
    factory = KeyFactory(28)
    key_id = factory.aws_key_id().value
    jwt = factory.jwt().value
    assert _rules(engine, f"\n{key_id}\n\n{jwt}\n") == ["aws-access-key-id", "jwt"]
    pair_id, secret = factory.aws_pair()
    stripe = factory.stripe().value
    text = f"id={pair_id.value}\nstripe={stripe}\naws_secret_access_key = {secret.value}\n"
    assert _rules(engine, text) == ["stripe-key", "aws-credentials"]


def _signed_jwt(claims: dict[str, object], key: bytes, alg: str = "HS256") -> str:
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = (
        b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        + "."
        + b64(json.dumps(claims).encode())
    )
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), digest).digest())


def test_jwt_signed_with_a_published_example_key_is_no_credential(engine: Engine) -> None:
    # jwt.io's default key and the library docs' "secret": anyone can mint such a token, so
    # finding one leaks nothing (the weak key is a flaw of the service, not a leak).
    for key in (b"secret", b"your-256-bit-secret", b"1234567890"):
        assert _rules(engine, _signed_jwt({"name": "test"}, key)) == [], key
    assert _rules(engine, _signed_jwt({"key": "value"}, b"secret", "HS512")) == []
    # The same claims under a key nobody published: a credential.
    key = random.Random(31).randbytes(32)
    assert _rules(engine, _signed_jwt({"name": "test"}, key)) == ["jwt"]
    assert _rules(engine, _signed_jwt({"name": "test"}, key, "HS384")) == ["jwt"]


def test_jwt_whose_signature_cannot_be_its_algorithms_is_no_token(engine: Engine) -> None:
    # HS256 signs 32 bytes (43 base64url characters): 45 characters is a hand-edited string.
    rng = random.Random(32)
    token = _jwt({"hello": "world"}, rng)
    head, payload, signature = token.split(".")
    assert _rules(engine, token) == ["jwt"]
    assert _rules(engine, f"{head}.{payload}.{signature}xy") == []
    assert _rules(engine, f"{head}.{payload}.{signature[:40]}") == []


def test_every_lazily_compiled_pattern_compiles() -> None:
    """Rules and validators compile their regexes on first use (start-up time): a typo in one
    must still fail here, not in the first scan that reaches it."""
    import re

    from claudesec.detect import validators

    assert all(isinstance(d.regex, re.Pattern) for d in DETECTORS)
    lazy = [v for v in vars(validators).values() if isinstance(v, validators._LazyPattern)]
    assert len(lazy) >= 20
    assert all(isinstance(p.pattern, bytes) and p.groups >= 0 for p in lazy)

"""The detector catalogue: every kind found in every context, placeholders and decoys not,
the hyperscan and pure-Python prefilters agree, and no input crashes it."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claudesec.detectors import (
    DETECTORS,
    DETECTORS_BY_ID,
    base62_crc32,
    find_secrets,
    is_placeholder,
)
from claudesec.scan.engine import Engine, hyperscan_available
from tests.fixtures.keys import (
    FakeKey,
    KeyFactory,
    contexts,
    decoys,
    pem_footer,
    pem_header,
    placeholders,
)

BACKENDS = ["python", "hyperscan"] if hyperscan_available() else ["python"]
KEY_MAKERS = [
    "anthropic_api",
    "anthropic_admin",
    "anthropic_oauth",
    "anthropic_other",
    "aws_key_id",
    "github_classic",
    "github_fine_grained",
    "gitlab",
    "slack_token",
    "slack_webhook",
    "stripe",
    "google",
    "openai",
    "huggingface",
    "pypi",
    "npm",
    "private_key",
    "jwt",
]


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

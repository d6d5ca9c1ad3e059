"""The engine's mechanics: chunked streams, binary sniffing, inline allow comments."""

from __future__ import annotations

import pytest

from claudesec.detect.engine import Engine, hyperscan_available, is_binary, locate
from tests.fixtures.keys import KeyFactory


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def test_chunked_scan_matches_whole_scan_across_block_edges(engine: Engine) -> None:
    factory = KeyFactory(21)
    keys = [factory.anthropic_api().value for _ in range(6)]
    filler = b"lorem ipsum dolor sit amet\n" * 4000
    data = b"".join(
        filler[: 37_000 * (i + 1) % len(filler)] + b"\n" + k.encode() + b"\n"
        for i, k in enumerate(keys)
    )
    whole = engine.scan(data)
    for block in (4096, 65_536, 100_003):
        chunks = [data[i : i + block] for i in range(0, len(data), block)]
        streamed = list(engine.scan_chunks(chunks))
        assert [(f.hit.start, f.line, f.hit.secret) for f in streamed] == [
            (f.hit.start, f.line, f.hit.secret) for f in whole
        ]
    assert len(whole) == 6


def test_binary_is_detected_by_content_not_name() -> None:
    assert is_binary(b"abc\0def")
    assert not is_binary(b"plain text " * 2000)
    assert not is_binary(b"x" * 9000 + b"\0")  # only the first 8 KB are sniffed


def test_line_and_column_are_one_based_and_count_characters(engine: Engine) -> None:
    key = KeyFactory(22).anthropic_api().value
    data = f"first\nprémier = '{key}'\n".encode()
    (found,) = engine.scan(data)
    assert (found.line, found.column) == (2, 12)


@pytest.mark.parametrize(
    ("template", "allowed"),
    [
        ("KEY={k}  # claudesec:allow\n", True),
        ("# claudesec:allow\nKEY={k}\n", True),
        ("KEY={k}  # claudesec:allow anthropic-api-key\n", True),
        ("KEY={k}  # claudesec:allow github-token\n", False),
        ("KEY={k}  # claudesec:allow anthropic-api-key -- a fixture, not a real key\n", True),
        ("KEY={k}  # claudesec:allow -- test fixture, not a real key\n", True),
        ("KEY={k}  /* claudesec:allow */\n", True),
        ("KEY={k}  <!-- claudesec:allow anthropic-api-key -->\n", True),
        ("KEY={k}  # claudesec:allow github-token, anthropic-api-key\n", True),
        ("# claudesec:allow\n\nKEY={k}\n", False),
        ("KEY={k}\n# claudesec:allow\n", False),
    ],
)
def test_inline_allow(engine: Engine, template: str, allowed: bool) -> None:
    key = KeyFactory(23).anthropic_api().value
    data = template.format(k=key).encode()
    (found,) = engine.scan(data)
    assert found.allowed is allowed
    assert found.unknown_allow_ids == ()


@pytest.mark.parametrize(
    ("comment", "unknown"),
    [
        # A typo in the rule id: it must not silence the line.
        ("claudesec:allow antropic-api-key", ("antropic-api-key",)),
        # Free text without the `--` separator reads as rule ids: none is known.
        ("claudesec:allow test fixture", ("test", "fixture")),
        ("claudesec:allow github-token, anthropic-apikey", ("anthropic-apikey",)),
    ],
)
def test_allow_with_an_unknown_rule_id_does_not_suppress(
    engine: Engine, comment: str, unknown: tuple[str, ...]
) -> None:
    key = KeyFactory(23).anthropic_api().value
    (found,) = engine.scan(f"KEY={key}  # {comment}\n".encode())
    assert found.allowed is False
    assert found.unknown_allow_ids == unknown


def test_locate_handles_no_hits() -> None:
    assert locate(b"abc", []) == []


def test_disabled_rules_are_not_compiled() -> None:
    key = KeyFactory(24).github_classic().value
    assert Engine(disabled=["github-token"]).find(key.encode()) == []
    assert Engine().find(key.encode())


def test_gates_are_prefixes_of_their_patterns() -> None:
    """A gate may only drop keyword hits that cannot match: wherever the rule matches, its gate
    matches at the same start (checked on each rule's own positive contexts)."""
    import re

    from claudesec.detect.catalogue import DETECTORS_BY_ID

    factory = KeyFactory(60)
    _, password = factory.connection_url()
    samples = {
        "connection-url-password": [
            f"postgresql://app:{password.value}@db.internal:5432/app",
            f"redis://:{password.value}@cache:6379",
        ],
        "generic-secret-assignment": [
            template.format(v=factory.password().value)
            for template in (
                "DB_PASSWORD={v}\n",
                'Api-Key: "{v}"',
                "password := '{v}'",
                '"client_secret" => `{v}`',
                'PASSWORD = \\"{v}\\"',
                "ACCESS_KEY\t=\t{v}",
            )
        ],
    }
    for rule_id, texts in samples.items():
        detector = DETECTORS_BY_ID[rule_id]
        gate = re.compile(detector.gate.encode(), re.IGNORECASE if detector.caseless else 0)
        assert detector.anchored
        for text in texts:
            data = text.encode()
            starts = [m.start() for m in detector.regex.finditer(data)]
            assert starts, text
            for start in starts:
                assert gate.match(data, start), text


@pytest.mark.skipif(not hyperscan_available(), reason="hyperscan not installed")
def test_gated_hyperscan_reports_far_fewer_hits_but_the_same_findings() -> None:
    python, gated = Engine(backend="python"), Engine(backend="hyperscan")
    key = KeyFactory(61).password().value
    text = (
        "see https://docs.python.org/3/ and token = tok(x)\n" * 50
        + f'secret_token = "{key}"\n'
        + "password is required\n" * 50
    ).encode()
    assert len(gated._prefilter.hits(text)) < len(python._prefilter.hits(text)) / 10
    assert gated.find(text) == python.find(text)
    assert [h.rule_id for h in gated.find(text)] == ["generic-secret-assignment"]


def test_one_engine_scans_on_many_threads_at_once() -> None:
    # The audited client and the proxy share one engine across request threads.
    from concurrent.futures import ThreadPoolExecutor

    from claudesec.detect.engine import default_engine
    from tests.fixtures.keys import KeyFactory

    engine = default_engine()
    key = KeyFactory(7).anthropic_api().value
    blob = (b"filler line without secrets\n" * 20_000) + f"ANTHROPIC_API_KEY={key}\n".encode()

    def count(_: int) -> int:
        return len(engine.find(blob))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(count, range(64)))
    assert results == [results[0]] * 64
    assert results[0] >= 1

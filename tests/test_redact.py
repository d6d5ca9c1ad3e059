from __future__ import annotations

import secrets
import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from claudesec.redact import _KIND_PREFIX, ELLIPSIS, looks_like_secret, redact, scrub

BODY_ALPHABET = string.ascii_letters + string.digits + "_-"


def fake_anthropic_key(kind: str = "api03") -> str:
    return f"sk-ant-{kind}-" + "".join(secrets.choice(BODY_ALPHABET) for _ in range(93)) + "AA"


def _longest_common_run(hint: str, body: str) -> int:
    best = 0
    for start in range(len(hint)):
        for end in range(start + best + 1, len(hint) + 1):
            if hint[start:end] in body:
                best = end - start
            else:
                break
    return best


def test_anthropic_key_hint_matches_partial_key_hint_style() -> None:
    key = fake_anthropic_key()
    hint = redact(key)
    assert hint == f"sk-ant-api03-{key[13:16]}{ELLIPSIS}{key[-4:]}"
    assert key not in hint


def test_kind_prefix_is_kept_for_admin_and_oauth_tokens() -> None:
    assert redact(fake_anthropic_key("admin01")).startswith("sk-ant-admin01-")
    assert redact(fake_anthropic_key("oat01")).startswith("sk-ant-oat01-")


def test_short_secrets_reveal_nothing() -> None:
    assert redact("hunter2") == ELLIPSIS
    assert redact("") == ELLIPSIS


def test_pem_blocks_show_only_the_header() -> None:
    header = "-----BEGIN " + "PRIVATE KEY-----"
    pem = header + "\n" + "".join(secrets.choice(BODY_ALPHABET) for _ in range(400))
    hint = redact(pem)
    assert hint.startswith(header)
    assert pem[len(header) + 1 : len(header) + 9] not in hint


@settings(max_examples=500)
@given(st.text(min_size=0, max_size=300))
def test_hint_never_holds_eight_consecutive_characters_of_the_secret(secret: str) -> None:
    # Without a kind prefix the whole string is secret body.
    assume(not _KIND_PREFIX.match(secret) and not secret.startswith("-----BEGIN"))
    hint = redact(secret)
    for part in hint.split(ELLIPSIS):
        assert _longest_common_run(part, secret) < 8


@given(st.text(alphabet=BODY_ALPHABET, min_size=20, max_size=200))
def test_random_bodies_never_leak_eight_characters(body: str) -> None:
    hint = redact(body)
    assert _longest_common_run(hint.replace(ELLIPSIS, "\x00"), body) < 8


@given(st.text(max_size=200))
def test_equal_secrets_give_equal_hints(secret: str) -> None:
    assert redact(secret) == redact(str(secret))


@given(st.text(alphabet=BODY_ALPHABET, min_size=93, max_size=93))
def test_anthropic_hint_never_contains_eight_body_characters(body: str) -> None:
    key = "sk-ant-api03-" + body + "AA"
    hint = redact(key)
    assert _longest_common_run(hint.removeprefix("sk-ant-api03-"), body + "AA") < 8


def test_hint_has_no_control_characters() -> None:
    assert all(ch.isprintable() for ch in redact("abc\x1b[31m" + "x" * 40 + "\n\r\x07end!"))


def test_scrub_replaces_every_occurrence_with_the_hint() -> None:
    key = fake_anthropic_key()
    text = f"error for {key} (again {key})"
    cleaned = scrub(text, [key])
    assert key not in cleaned
    assert cleaned.count(redact(key)) == 2


def test_looks_like_secret() -> None:
    assert looks_like_secret(fake_anthropic_key())
    assert not looks_like_secret("https://api.anthropic.com")

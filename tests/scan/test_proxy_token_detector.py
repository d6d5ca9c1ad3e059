"""The claudesec proxy token rule: what `claudesec proxy token create` prints is found; a
placeholder of the same shape is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from claudesec.detect.catalogue import DETECTORS_BY_ID
from claudesec.detect.engine import find_secrets
from claudesec.proxy.tokens import TOKEN_PREFIX, TokenStore

RULE = "claudesec-proxy-token"


def issued(tmp_path: Path) -> str:
    # The real issuing path: exactly what a user would paste into a config file.
    return TokenStore(tmp_path / "tokens.json").create(user="u", role="r", lifetime_s=60).secret


@pytest.mark.parametrize(
    "template",
    [
        "curl -H 'Authorization: Bearer {t}' http://proxy:8788/v1/messages",
        "{t}\n",
        'tokens = ["{t}"]',
    ],
)
def test_an_issued_token_is_found_and_named(tmp_path: Path, template: str) -> None:
    token = issued(tmp_path)
    found = find_secrets(template.format(t=token))
    assert [(m.rule_id, m.secret) for m in found] == [(RULE, token)]
    assert DETECTORS_BY_ID[RULE].kind == "claudesec proxy token"


@pytest.mark.parametrize(
    "template",
    [
        "ANTHROPIC_API_KEY={t}\n",
        "export ANTHROPIC_AUTH_TOKEN={t}",
        'Anthropic(api_key="{t}")',
        "x-api-key: {t}\n",
    ],
)
def test_an_issued_token_in_a_key_assignment_is_found(tmp_path: Path, template: str) -> None:
    # The token rule comes before the generic assignment rule, so the finding names the kind.
    token = issued(tmp_path)
    found = find_secrets(template.format(t=token))
    assert [(m.rule_id, m.secret) for m in found] == [(RULE, token)]


@pytest.mark.parametrize(
    "placeholder",
    [
        TOKEN_PREFIX + "X" * 43,
        TOKEN_PREFIX + "x" * 43,
        TOKEN_PREFIX + ("abcdefghij" * 5)[:43],
        TOKEN_PREFIX + "0" * 43,
        TOKEN_PREFIX + "your-proxy-token-here",
        "<your claudesec proxy token>",
    ],
)
def test_a_placeholder_is_not(placeholder: str) -> None:
    assert [
        m for m in find_secrets(f"ANTHROPIC_API_KEY={placeholder}\n") if m.rule_id == RULE
    ] == []


def test_a_longer_or_embedded_run_is_not_a_token(tmp_path: Path) -> None:
    token = issued(tmp_path)
    for text in (token + "A", "x" + token):
        assert [m for m in find_secrets(text) if m.rule_id == RULE] == []

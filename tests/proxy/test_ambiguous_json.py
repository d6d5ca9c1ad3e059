"""Bodies that parsers read differently, and bodies nested too deep, through the real proxy.

The attack: the proxy judges its own parse of the body and forwards the original bytes, so a
body the upstream reads differently gets past the policy. Each is refused with a 400 that is
recorded, and nothing reaches the upstream.
"""

from __future__ import annotations

import json

import pytest

from claudesec.emulator import Emulator
from tests.fixtures.emulator import MODEL
from tests.proxy.conftest import RunningProxy
from tests.proxy.test_server import events, send

FORBIDDEN = "claude-opus-4-1"  # the "dev" role allows claude-sonnet-* only
PROMPT = '"messages": [{"role": "user", "content": "hi"}]'


def _raw(text: str) -> bytes:
    return text.encode("utf-8")


AMBIGUOUS: dict[str, bytes] = {
    # Python keeps the last key; a first-key-wins upstream would serve the forbidden model.
    "duplicate top-level key": _raw(
        f'{{"model": "{FORBIDDEN}", "max_tokens": 32, {PROMPT}, "model": "{MODEL}"}}'
    ),
    "duplicate key deep inside": _raw(
        f'{{"model": "{MODEL}", "max_tokens": 32, "messages": [{{"role": "user", '
        '"content": [{"type": "text", "text": "hi", "text": "other"}]}]}'
    ),
    "duplicate max_tokens": _raw(
        f'{{"model": "{MODEL}", "max_tokens": 100000, {PROMPT}, "max_tokens": 32}}'
    ),
    "NaN": _raw(f'{{"model": "{MODEL}", "max_tokens": 32, "temperature": NaN, {PROMPT}}}'),
    "Infinity": _raw(f'{{"model": "{MODEL}", "max_tokens": 32, "top_p": -Infinity, {PROMPT}}}'),
    "number overflowing a double": _raw(
        f'{{"model": "{MODEL}", "max_tokens": 32, "temperature": 1e400, {PROMPT}}}'
    ),
    "integer beyond 2**53": _raw(
        f'{{"model": "{MODEL}", "max_tokens": 32, {PROMPT}, '
        f'"metadata": {{"user_id": "u", "n": {2**64 + 32}}}}}'
    ),
    "lone surrogate escape": _raw(
        f'{{"model": "{MODEL}", "max_tokens": 32, "messages": [{{"role": "user", '
        '"content": "sk-ant-\\ud800api"}]}'
    ),
    "byte order mark": b"\xef\xbb\xbf"
    + _raw(f'{{"model": "{MODEL}", "max_tokens": 32, {PROMPT}}}'),
    "UTF-16": f'{{"model": "{MODEL}", "max_tokens": 32, {PROMPT}}}'.encode("utf-16"),
    "invalid UTF-8": _raw(
        f'{{"model": "{MODEL}", "max_tokens": 32, "messages": [{{"role": "user", "content": "'
    )
    + b"\xff\xfe"
    + b'"}]}',
    "encoded surrogate (CESU-8)": _raw(
        f'{{"model": "{MODEL}", "max_tokens": 32, "messages": [{{"role": "user", "content": "'
    )
    + b"\xed\xa0\x80"
    + b'"}]}',
    "trailing garbage": _raw(f'{{"model": "{MODEL}", "max_tokens": 32, {PROMPT}}} {{"x": 1}}'),
}


@pytest.mark.parametrize("name", sorted(AMBIGUOUS))
def test_ambiguous_json_is_refused_with_a_recorded_400(
    name: str, proxy: RunningProxy, emulator: Emulator
) -> None:
    status, headers, body = send(
        proxy, "POST", "/v1/messages", headers={"x-api-key": proxy.token()}, raw=AMBIGUOUS[name]
    )
    assert status == 400, (status, body)
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error"
    assert headers["x-claudesec-reason"] == "request.malformed"
    assert emulator.state.requests() == []
    [denial] = events(proxy)
    assert (denial.type, denial.reason, denial.user) == ("denial", "request.malformed", "alice")
    assert denial.extra["http_status"] == 400


def test_the_duplicate_key_message_names_the_key(proxy: RunningProxy) -> None:
    raw = AMBIGUOUS["duplicate top-level key"]
    _, _, body = send(proxy, "POST", "/v1/messages", headers={"x-api-key": proxy.token()}, raw=raw)
    assert "repeats the key 'model'" in json.loads(body)["error"]["message"]


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_json_is_a_recorded_400_not_a_500(
    depth: int, proxy: RunningProxy, emulator: Emulator
) -> None:
    nested = "[" * depth + "]" * depth
    raw = _raw(f'{{"model": "{MODEL}", "max_tokens": 32, {PROMPT}, "metadata": {nested}}}')
    status, _, body = send(
        proxy, "POST", "/v1/messages", headers={"x-api-key": proxy.token()}, raw=raw
    )
    assert status == 400, (status, body)
    assert "nests deeper than" in json.loads(body)["error"]["message"]
    assert emulator.state.requests() == []
    [denial] = events(proxy)
    assert (denial.reason, denial.extra["http_status"]) == ("request.malformed", 400)


def test_well_formed_bodies_still_pass(proxy: RunningProxy, emulator: Emulator) -> None:
    # Escaped astral characters (a surrogate pair), big-but-safe numbers, the nesting of a real
    # tool schema: none of them is ambiguous.
    schema: dict[str, object] = {"type": "string"}
    for _ in range(12):
        schema = {"type": "object", "properties": {"x": schema}}
    body = {
        "model": MODEL,
        "max_tokens": 32,
        "temperature": 0.5,
        "messages": [{"role": "user", "content": "smile \U0001f600 and caf\u00e9"}],
        "metadata": {"user_id": "u", "n": 9007199254740991, "schema": schema},
    }
    raw = json.dumps(body, ensure_ascii=True).encode()
    status, _, answer = send(
        proxy, "POST", "/v1/messages", headers={"x-api-key": proxy.token()}, raw=raw
    )
    assert status == 200, answer
    assert len(emulator.state.requests()) == 1

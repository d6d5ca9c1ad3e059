"""strict_json: JSON that is valid Unicode, or a ValueError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claudesec import strict_json

_ANY_STR = st.text(alphabet=st.characters(codec=None, exclude_categories=()))


@given(st.recursive(_ANY_STR, lambda inner: st.lists(inner) | st.dictionaries(_ANY_STR, inner)))
def test_loads_refuses_exactly_the_documents_with_lone_surrogates(value: object) -> None:
    text = json.dumps(value)  # ASCII escapes: how a lone surrogate travels in JSON
    lone = strict_json.has_lone_surrogate(value)
    if lone:
        with pytest.raises(ValueError, match="lone surrogate"):
            strict_json.loads(text)
        with pytest.raises(ValueError, match="lone surrogate"):
            strict_json.loads(text.encode())
    else:
        assert strict_json.loads(text) == value == strict_json.loads(text.encode())
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # and it really is encodable


@pytest.mark.parametrize(
    "text",
    ['"\\ud800"', '"\\uDFFF x"', '{"\\udc00": 1}', '["ok", "\\ud83d"]', '"\\ude00\\ud83d"'],
)
def test_lone_surrogate_escapes_are_invalid_json(text: str) -> None:
    with pytest.raises(strict_json.LoneSurrogateError):
        strict_json.loads(text)


def test_a_surrogate_pair_is_one_character() -> None:
    assert strict_json.loads('"\\ud83d\\ude00"') == "\U0001f600"


def test_scrub_makes_any_value_encodable() -> None:
    value = {"a\ud800": ["\udfff", 1, ("x\udc00",)]}
    assert strict_json.scrub(value) == {"a\ufffd": ["\ufffd", 1, ["x\ufffd"]]}

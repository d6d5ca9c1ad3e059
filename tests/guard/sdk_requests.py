"""Request bodies with a value planted in one field each, derived from the SDK's own types.

The anthropic SDK describes every request it accepts as TypedDicts
(``anthropic.types.MessageCreateParams`` and the content block ``*Param`` types under it).
:func:`planted_bodies` walks those types and yields, for every string field, every free-form
mapping (a planted key and a planted value) and every free-form JSON value they reach, one
request body with the plant in that place and the minimum around it. A field or block type a
new SDK adds appears here with no change to this file.

Fields the SDK types as ``Literal`` (``type``, ``role``, enums) get no plant: the attack
tests plant in them by hand. Binary inputs (file handles, paths) and the SDK's response
models (accepted as inputs too, with a ``*Param`` twin) are left out.
"""

from __future__ import annotations

import collections.abc
import os
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import typing_extensions

PLANT = "\x00PLANT\x00"  # replaced by the caller's value; no real field holds a NUL

_WRAPPERS = {
    typing.Annotated,
    typing_extensions.Annotated,
    typing.Required,
    typing.NotRequired,
    typing_extensions.Required,
    typing_extensions.NotRequired,
    typing_extensions.ReadOnly,
}
_SEQUENCES = {list, collections.abc.Iterable, collections.abc.Sequence}
_MAPPINGS = {dict, collections.abc.Mapping}


@dataclass(frozen=True)
class Planted:
    """One request body, and where in the SDK's types the plant sits."""

    where: str  # e.g. "messages[0]<UserMessageParam>.content[0]<SearchResultBlockParam>.title"
    body: dict[str, Any]
    field_of: tuple[str, str]  # (TypedDict name, field name) holding the plant


def planted_bodies(params: Any, base: dict[str, Any]) -> Iterator[Planted]:
    """One body per place a value can be planted in ``params`` (a TypedDict of the SDK).

    ``base`` supplies realistic values for the required top-level fields (a model the
    emulator serves, a user message), so each body differs from a valid request only where
    the plant is.
    """
    hints = _hints(params)
    for name, hint in hints.items():
        for where, value, inner in _variants(hint, (params,)):
            yield Planted(f"{name}{where}", {**base, name: value}, inner or (params.__name__, name))


def _unwrap(hint: Any) -> Any:
    while get_origin(hint) in _WRAPPERS:
        hint = get_args(hint)[0]
    return hint


def _is_typed_dict(hint: Any) -> bool:
    return isinstance(hint, type) and hasattr(hint, "__required_keys__")


_HINTS: dict[Any, dict[str, Any]] = {}


def _hints(typed_dict: Any) -> dict[str, Any]:
    if typed_dict not in _HINTS:
        _HINTS[typed_dict] = typing.get_type_hints(typed_dict, include_extras=True)
    return _HINTS[typed_dict]


def _minimal(hint: Any) -> Any:
    hint = _unwrap(hint)
    origin = get_origin(hint)
    if hint is str or hint is object or hint is Any:
        return "x"
    if hint is bool:
        return True
    if hint in (int, float):
        return 1
    if hint is type(None):
        return None
    if origin is Literal:
        return get_args(hint)[0]
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        return _minimal(options[0])
    if origin in _SEQUENCES:
        return []
    if origin in _MAPPINGS:
        return {}
    if _is_typed_dict(hint):
        return {
            key: _minimal(value)
            for key, value in _hints(hint).items()
            if key in hint.__required_keys__
            or get_origin(value) in (typing.Required, typing_extensions.Required)
        }
    raise TypeError(f"no minimal value for {hint!r}")


def _skipped(hint: Any) -> bool:
    import pydantic

    origin = get_origin(hint)
    if hint in (int, float, bool, bytes, type(None)) or origin is Literal:
        return True
    if origin in (typing.IO, os.PathLike) or hint is os.PathLike:
        return True
    return isinstance(hint, type) and issubclass(hint, pydantic.BaseModel)


def _variants(
    hint: Any, stack: tuple[Any, ...]
) -> Iterator[tuple[str, Any, tuple[str, str] | None]]:
    hint = _unwrap(hint)
    origin = get_origin(hint)
    if hint is str:
        yield "", PLANT, None
        return
    if _skipped(hint):
        return
    if origin in (Union, types.UnionType):
        for option in get_args(hint):
            yield from _variants(option, stack)
        return
    if origin in _SEQUENCES:
        for where, value, field_of in _variants(get_args(hint)[0], stack):
            yield f"[0]{where}", [value], field_of
        return
    if origin in _MAPPINGS:
        item = get_args(hint)[1]
        yield "{key}", {PLANT: _minimal(item)}, None
        for where, value, field_of in _variants(item, stack):
            yield f".k{where}", {"k": value}, field_of
        return
    if _is_typed_dict(hint):
        if hint in stack:
            return  # a type inside itself: its fields are covered at the outer level
        base = _minimal(hint)
        for key, sub in _hints(hint).items():
            for where, value, field_of in _variants(sub, (*stack, hint)):
                yield (
                    f"<{hint.__name__}>.{key}{where}",
                    {**base, key: value},
                    field_of or (hint.__name__, key),
                )
        return
    if hint is object or hint is Any:
        # Free-form JSON (tool inputs): a string, a key, a value in an object, a list item.
        yield "", PLANT, None
        yield "{key}", {PLANT: 1}, None
        yield ".k", {"k": PLANT}, None
        yield "[0]", [PLANT], None
        return
    raise TypeError(f"unknown type in the SDK's request types: {hint!r}")


def substitute(value: Any, plant: str) -> Any:
    """``value`` with :data:`PLANT` replaced by ``plant`` (in strings and mapping keys)."""
    if isinstance(value, str):
        return plant if value == PLANT else value
    if isinstance(value, dict):
        return {substitute(k, plant): substitute(v, plant) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, plant) for v in value]
    return value


def containing_mapping(value: Any) -> dict[str, Any] | None:
    """The mapping whose value (not key) is the plant, if any."""
    if isinstance(value, dict):
        if PLANT in value.values():
            return value
        for item in value.values():
            found = containing_mapping(item)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = containing_mapping(item)
            if found is not None:
                return found
    return None


def inside_signed_block(value: Any, signed: bool = False) -> bool:
    """Whether the plant sits in a thinking or redacted_thinking block (signed by the API)."""
    if isinstance(value, dict):
        signed = signed or value.get("type") in ("thinking", "redacted_thinking")
        return any(
            (k == PLANT and signed) or inside_signed_block(v, signed) for k, v in value.items()
        )
    if isinstance(value, list):
        return any(inside_signed_block(v, signed) for v in value)
    return signed and value == PLANT


def binary_source_data(body: Any) -> bool:
    """Whether the plant is the ``data`` of a base64 image or PDF source (bytes, not text)."""
    holder = containing_mapping(body)
    if holder is None or holder.get("data") != PLANT or holder.get("type") != "base64":
        return False
    media = holder.get("media_type")
    return not (isinstance(media, str) and media.startswith("text/"))

"""The audit event schema (versioned) and its canonical JSON form.

The canonical form is what the hash chain covers, so it must be byte-for-byte reproducible:
keys sorted, no whitespace, UTF-8, no NaN, and fields at their default value left out (short
records hash and store faster, and a new optional field does not change old records).

Forward compatibility: a record written by a newer claudesec may carry top-level fields this
version does not know. They land in :attr:`AuditEvent.extra` and are written back at the top
level, so decoding and re-encoding any record gives the same bytes.

``upstream`` (added without a schema version bump: a record without it encodes exactly as
before, so every older record keeps its hash) says which credential the call went out with:
``{"kind": "api_key", "key_hint": ...}`` for a static key, or ``{"kind": "federation",
"issuer", "subject", "rule_id", "organization_id", "service_account_id", "workspace_id"}``
for a token minted by workload identity federation. Values are identifiers (strings); a value
shaped like a whole Anthropic credential is refused, so a key or token cannot be recorded by
mistake. Keys are short names (claudesec writes those of :data:`UPSTREAM_FIELDS`; a newer
writer's others still decode).

Prompts are never stored. :attr:`AuditEvent.prompt_hash` only accepts the output of
:func:`claudesec.audit.secrets.prompt_hash` (a keyed HMAC), which is checked by shape here so a
caller cannot slip prompt text into it by mistake.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from claudesec.errors import UsageError

SCHEMA_VERSION = 1


class EventType(StrEnum):
    """Event types written by claudesec itself. Other writers may use their own (``[a-z_.]+``)."""

    CALL = "call"
    # Written before a call's first byte goes upstream; the call's record completes it
    # (``admission_seq``). One without a completion is a call in flight or cut off by a crash.
    ADMISSION = "admission"
    DENIAL = "denial"
    DLP_HIT = "dlp_hit"
    KEY_ROTATION = "key_rotation"
    DRILL = "drill"
    PRUNE = "prune"
    CONFIG_CHANGE = "config_change"


class Decision(StrEnum):
    """What the policy decided for a call (empty for events that are not calls)."""

    ALLOW = "allow"
    DENY = "deny"
    REDACT = "redact"
    ERROR = "error"


class InvalidEvent(UsageError):
    """An event that cannot be recorded as given (a bug in the writer, not in the store)."""


_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_KIND_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_UPSTREAM_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CREDENTIAL_PREFIX = "sk-ant-"
_STR_LIMIT = 1024  # identifiers, not payloads: a long value is almost certainly a mistake
# What an upstream credential may be described by: kinds and identifiers, never the secret.
UPSTREAM_FIELDS = frozenset(
    {
        "kind",
        "key_hint",
        "key_id",
        "issuer",
        "subject",
        "rule_id",
        "organization_id",
        "service_account_id",
        "workspace_id",
    }
)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit record. Build with keyword arguments; everything but ``type`` is optional."""

    type: str
    time_ns: int = field(default_factory=time.time_ns)
    user: str = ""
    role: str = ""
    identity_source: str = ""
    model: str = ""
    prompt_hash: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    stop_reason: str = ""
    decision: str = ""
    reason: str = ""
    dlp_kinds: tuple[str, ...] = ()
    request_id: str = ""
    host: str = ""
    app: str = ""
    upstream: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not _TYPE_RE.match(self.type):
            raise InvalidEvent(f"event type must match [a-z][a-z0-9_.]*, got {self.type!r}")
        # StrEnum members compare equal to their value but serialise by name in some paths:
        # store the plain string.
        object.__setattr__(self, "type", str(self.type))
        object.__setattr__(self, "decision", str(self.decision))
        for name in _STR_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str):
                raise InvalidEvent(f"event field {name} must be a string")
            if len(value) > _STR_LIMIT:
                raise InvalidEvent(f"event field {name} is longer than {_STR_LIMIT} characters")
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidEvent(f"event field {name} must be a non-negative integer")
        latency = self.latency_ms
        if isinstance(latency, bool) or not isinstance(latency, (int, float)):
            raise InvalidEvent("event field latency_ms must be a number")
        if not math.isfinite(latency) or latency < 0:
            raise InvalidEvent("event field latency_ms must be a finite, non-negative number")
        object.__setattr__(self, "latency_ms", float(latency))
        if self.prompt_hash and not _HASH_RE.match(self.prompt_hash):
            raise InvalidEvent(
                "prompt_hash must be the hex HMAC from claudesec.audit.secrets.prompt_hash(), "
                "never prompt text"
            )
        kinds = tuple(self.dlp_kinds)
        for kind in kinds:
            if not isinstance(kind, str) or not _KIND_RE.match(kind):
                raise InvalidEvent("dlp_kinds holds detector kinds (ids), never matched values")
        object.__setattr__(self, "dlp_kinds", kinds)
        object.__setattr__(self, "upstream", _freeze_upstream(self.upstream))
        object.__setattr__(self, "extra", _freeze_extra(self.extra))

    # ----------------------------------------------------------------- canonical form

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict: defaults left out, extra fields at the top level."""
        data: dict[str, Any] = {"v": self.version, "type": self.type, "time_ns": self.time_ns}
        for name in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value:
                data[name] = list(value) if isinstance(value, tuple) else value
        if self.upstream:
            data["upstream"] = dict(self.upstream)
        for key, value in self.extra.items():
            data[key] = _thaw(value)
        return data

    def canonical_json(self) -> str:
        """The exact text the hash chain covers."""
        return canonical_dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditEvent:
        """Decode a stored record; fields unknown to this version land in ``extra``."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise InvalidEvent("an audit record must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEvent:
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key == "v":
                known["version"] = value
            elif key in _DECODABLE:
                known[key] = tuple(value) if key == "dlp_kinds" else value
            else:
                extra[key] = value
        if "type" not in known:
            raise InvalidEvent("an audit record needs a type")
        return cls(**known, extra=extra)


# One encoder for every record: json.dumps builds a new one per call when given options.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_dumps(data: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, no NaN, non-ASCII kept as UTF-8."""
    return _CANONICAL.encode(data)


_STR_FIELDS = (
    "user",
    "role",
    "identity_source",
    "model",
    "prompt_hash",
    "stop_reason",
    "decision",
    "reason",
    "request_id",
    "host",
    "app",
)
_INT_FIELDS = ("time_ns", "input_tokens", "output_tokens", "version")
_OPTIONAL_FIELDS = (
    "user",
    "role",
    "identity_source",
    "model",
    "prompt_hash",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "stop_reason",
    "decision",
    "reason",
    "dlp_kinds",
    "request_id",
    "host",
    "app",
)
_FIELD_NAMES = frozenset(f.name for f in fields(AuditEvent))
_EMPTY: Mapping[str, str] = MappingProxyType({})
_RESERVED_KEYS = (_FIELD_NAMES - {"extra", "version"}) | {"v", "seq", "rec_hash", "prev_hash"}
_DECODABLE = _FIELD_NAMES - {"extra", "version"}


def _freeze_upstream(upstream: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(upstream, Mapping):
        raise InvalidEvent("upstream must be a mapping of identifiers")
    if not upstream:
        return _EMPTY
    for key, value in upstream.items():
        if not isinstance(key, str) or not _UPSTREAM_KEY_RE.match(key):
            raise InvalidEvent(f"upstream key {key!r} must match [a-z][a-z0-9_]*")
        if not isinstance(value, str) or len(value) > _STR_LIMIT:
            raise InvalidEvent(f"upstream.{key} must be a string of at most {_STR_LIMIT} chars")
        if value.startswith(_CREDENTIAL_PREFIX) and "..." not in value:
            raise InvalidEvent(f"upstream.{key} holds a credential: record its hint (redact)")
    # Empty values are left out, like empty fields: the same description hashes the same.
    return MappingProxyType({k: upstream[k] for k in sorted(upstream) if upstream[k]})


def _freeze_extra(extra: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(extra, Mapping):
        raise InvalidEvent("extra must be a mapping")
    for key in extra:
        if not isinstance(key, str):
            raise InvalidEvent("extra keys must be strings")
        if key in _RESERVED_KEYS:
            raise InvalidEvent(f"extra key {key!r} clashes with a schema field")
    try:
        # Plain JSON values (what the pipeline writes on every call) are checked and copied
        # directly: the JSON round trip below costs several times as much.
        return MappingProxyType({key: _plain_copy(extra[key], 0) for key in sorted(extra)})
    except _NotPlain:
        pass
    try:
        # A JSON round trip both validates (no NaN, no odd types) and deep-copies, so the
        # caller cannot mutate a recorded event afterwards.
        copied = json.loads(canonical_dumps(dict(extra)))
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"extra must hold JSON values only: {exc}") from exc
    return MappingProxyType({k: _freeze(v) for k, v in copied.items()})


class _NotPlain(Exception):
    """A value :func:`_plain_copy` leaves to the JSON round trip (which decides or refuses)."""


_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})
_PLAIN_DEPTH = 32


def _plain_copy(value: Any, depth: int) -> Any:
    """The frozen copy the JSON round trip would give, for exact JSON types only.

    Subclasses (enums), non-string keys, NaN and anything else raise :class:`_NotPlain`, so
    the round trip keeps deciding what they become or whether they are refused.
    """
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        raise _NotPlain
    if depth < _PLAIN_DEPTH:
        if kind is dict:
            for key in value:
                if type(key) is not str:
                    raise _NotPlain
            return MappingProxyType({k: _plain_copy(value[k], depth + 1) for k in sorted(value)})
        if kind is list or kind is tuple:
            return tuple(_plain_copy(item, depth + 1) for item in value)
    raise _NotPlain


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value

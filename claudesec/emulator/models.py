"""The model catalogue the emulator serves on ``/v1/models`` and accepts on ``/v1/messages``.

The ids follow the ``Model`` literal of the ``anthropic`` SDK this project pins (2.14),
newest first, which is also the order ``/v1/models`` lists them in. Release dates are
known only for the dated snapshots; the others carry the Unix epoch, which the SDK documents
as the value for an unknown release date. Retirement dates are the SDK's own
``_data/deprecated_models.py``; those models list as ``deprecated``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from claudesec.emulator.wire import rfc3339

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LINES = ("haiku", "sonnet", "opus", "fable", "mythos")

DEFAULT_MAX_INPUT_TOKENS = 200_000
DEFAULT_MAX_OUTPUT_TOKENS = 64_000


@dataclass(frozen=True)
class ModelSpec:
    """One model: its id, the aliases that resolve to it, and its limits."""

    id: str
    display_name: str
    created_at: datetime = _EPOCH
    aliases: tuple[str, ...] = field(default=())
    max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS
    max_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    retires_at: datetime | None = None

    @property
    def lifecycle(self) -> str:
        # A past retirement date means "overdue", not "retired" (per the SDK's ModelInfo).
        return "deprecated" if self.retires_at is not None else "active"

    @property
    def line(self) -> str | None:
        parts = self.id.split("-")
        return parts[1] if len(parts) > 1 and parts[1] in _LINES else None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "model",
            "id": self.id,
            "display_name": self.display_name,
            "created_at": rfc3339(self.created_at),
            "lifecycle": self.lifecycle,
            "deprecated_at": None,
            "retires_at": rfc3339(self.retires_at) if self.retires_at else None,
            "line": self.line,
            "max_input_tokens": self.max_input_tokens,
            "max_tokens": self.max_tokens,
        }


def _display_name(model_id: str) -> str:
    words = model_id.split("-")[1:]
    name = [words[0].capitalize()] if words else []
    version = [w for w in words[1:] if w.isdigit()]
    rest = [w.capitalize() for w in words[1:] if not w.isdigit()]
    if version:
        name.append(".".join(version))
    return " ".join(["Claude", *name, *rest])


def _date(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)


def _spec(model_id: str, *, snapshot: str | None = None, retires: str | None = None) -> ModelSpec:
    retires_at = _date(retires) if retires else None
    if snapshot is None:
        return ModelSpec(id=model_id, display_name=_display_name(model_id), retires_at=retires_at)
    return ModelSpec(
        id=f"{model_id}-{snapshot}",
        display_name=_display_name(model_id),
        created_at=_date(snapshot),
        aliases=(model_id,),
        retires_at=retires_at,
    )


def default_models() -> list[ModelSpec]:
    """A fresh copy of the built-in catalogue, newest first."""
    return [
        _spec("claude-fable-5-2"),
        _spec("claude-mythos-5-2"),
        _spec("claude-haiku-5-5"),
        _spec("claude-sonnet-5-5"),
        _spec("claude-fable-5-1"),
        _spec("claude-opus-5-5"),
        _spec("claude-mythos-5-1"),
        _spec("claude-sonnet-5"),
        _spec("claude-fable-5"),
        _spec("claude-mythos-5"),
        _spec("claude-opus-5"),
        _spec("claude-opus-4-8"),
        _spec("claude-opus-4-7"),
        _spec("claude-mythos-preview", retires="20260630"),
        _spec("claude-opus-4-6"),
        _spec("claude-sonnet-4-6"),
        _spec("claude-opus-4-5", snapshot="20251101", retires="20270122"),
        _spec("claude-haiku-4-5", snapshot="20251001"),
        _spec("claude-sonnet-4-5", snapshot="20250929", retires="20261130"),
    ]

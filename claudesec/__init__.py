"""claudesec: zero-trust control for Anthropic Claude API deployments.

Importing this package is cheap: nothing heavy (anthropic, boto3, rich) is imported here, so
the CLI and the scanner start fast. ``AuditedAnthropic`` and ``AsyncAuditedAnthropic`` are
loaded (with the ``anthropic`` SDK) on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AsyncAuditedAnthropic", "AuditedAnthropic", "__version__"]

if TYPE_CHECKING:
    from claudesec.guard.client import AsyncAuditedAnthropic, AuditedAnthropic

_LAZY = frozenset({"AuditedAnthropic", "AsyncAuditedAnthropic"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from claudesec.guard import client

        value = getattr(client, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'claudesec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

"""claudesec: zero-trust control for Anthropic Claude API deployments.

Importing this package is cheap: nothing heavy (anthropic, boto3, rich) is imported here, so
the CLI and the scanner start fast. ``AuditedAnthropic`` and ``AsyncAuditedAnthropic`` are
loaded (with the ``anthropic`` SDK) on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AsyncAuditedAnthropic", "AuditedAnthropic", "CallDenied", "__version__"]

if TYPE_CHECKING:
    from claudesec.guard.client import AsyncAuditedAnthropic, AuditedAnthropic
    from claudesec.guard.model import CallDenied

# Where each lazily exported name lives (guard.client imports anthropic: ~2 s).
_LAZY = {
    "AuditedAnthropic": "claudesec.guard.client",
    "AsyncAuditedAnthropic": "claudesec.guard.client",
    "CallDenied": "claudesec.guard.model",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'claudesec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

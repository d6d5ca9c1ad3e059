"""What one posture check is, as data: the shape every entry of the catalogue has.

A :class:`Check` carries everything a report, a compliance auditor or the generated docs need
(id, title, severity, rationale, remediation in the Console and through the API, and the
SOC 2 / ISO/IEC 27001:2022 / CIS Controls v8 mappings) plus one pure function that judges an
:class:`~claudesec.org.model.OrgInventory`. The function never calls the API: it returns the
resources that fail (:class:`Hit`), or raises :class:`NotApplicable` when the check has
nothing to judge (the configuration requires nothing, or an input was not read), which the
run reports as *skipped* with that reason, never as a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claudesec.config import OrgConfig
    from claudesec.org.model import OrgInventory


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Higher is worse: critical 4 ... low 1."""
        return {"critical": 4, "high": 3, "medium": 2, "low": 1}[self.value]


FRAMEWORKS = ("soc2", "iso27001", "cis")
FRAMEWORK_NAMES = {
    "soc2": "SOC 2 (2017 TSC)",
    "iso27001": "ISO/IEC 27001:2022 Annex A",
    "cis": "CIS Controls v8",
}


@dataclass(frozen=True)
class Hit:
    """One resource that fails a check, and why, in one line (ids and names only)."""

    resource: str
    message: str


class NotApplicable(Exception):
    """Raised by a check with nothing to judge; the message is the reason shown as skipped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckContext:
    """What a check may read besides the inventory.

    ``key_markings`` maps an API key id to how claudesec's key store knows it (``managed``,
    ``spare``, ``retiring``, ``retired``, ``revoked``, ``orphaned`` or ``unmanaged``; see
    :func:`claudesec.keys.status.remote_inventory`); ``None`` when the store was not read.
    ``federation_findings`` is what the federation linter said about the organisation's
    rules (``None`` when the linter is not available; see :mod:`claudesec.org.federation`).
    """

    config: OrgConfig
    now: datetime
    key_markings: Mapping[str, str] | None = None
    federation_findings: tuple[Hit, ...] | None = None


Evaluate = Callable[["OrgInventory", CheckContext], Iterable[Hit]]


@dataclass(frozen=True)
class Check:
    """One entry of the catalogue. ``needs`` names the inventory kinds read: if any could not
    be read, the check is skipped with the reason, never passed."""

    id: str
    title: str
    severity: Severity
    area: str
    needs: tuple[str, ...]
    rationale: str
    console: str
    api: str
    soc2: tuple[str, ...]
    iso27001: tuple[str, ...]
    cis: tuple[str, ...]
    evaluate: Evaluate = field(repr=False, compare=False)
    # The [org] settings the check reads (the docs list them beside the check).
    settings: tuple[str, ...] = ()
    # Whether `org check --fix` can remediate it.
    fixable: bool = False

    def controls(self, framework: str) -> tuple[str, ...]:
        return {"soc2": self.soc2, "iso27001": self.iso27001, "cis": self.cis}[framework]

    @property
    def remediation(self) -> str:
        return f"Console: {self.console} API: {self.api}"


def get(item: Any, *path: str) -> Any:
    """``item[path[0]][path[1]]...``, or None where any step is missing or not a mapping:
    the inventory is the platform's JSON, and an absent optional field is not an error."""
    value: Any = item
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def when(text: Any) -> datetime | None:
    """An RFC 3339 timestamp of the Admin API as an aware datetime (None if absent/invalid)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment


def label(item: Mapping[str, Any]) -> str:
    """``id (name)`` for a message; the name is user-chosen text, kept short."""
    ident = str(item.get("id") or item.get("user_id") or "?")
    name = item.get("name") or item.get("display_name") or item.get("email")
    return f"{ident} ({str(name)[:60]})" if name else ident


def make_check(
    id_: str,
    title: str,
    severity: Severity,
    fn: Any,
    needs: tuple[str, ...],
    rationale: str,
    console: str,
    api: str,
    soc2: tuple[str, ...],
    iso: tuple[str, ...],
    cis: tuple[str, ...],
    area: str,
    settings: tuple[str, ...] = (),
    fixable: bool = False,
) -> Check:
    """A :class:`Check` from the catalogue's argument order (as the modules list them)."""
    return Check(
        id_,
        title,
        severity,
        area,
        needs,
        rationale,
        console,
        api,
        soc2,
        iso,
        cis,
        fn,
        settings,
        fixable,
    )

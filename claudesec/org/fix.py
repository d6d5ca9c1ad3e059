"""``org check --fix``: the safe remediations, planned from a check run, applied on request.

Three kinds of change, each undoable and none able to cut off a workload that is in use:

* **deactivate an unused key** (``ORG-KEY-007``): only a key the usage report proves unused
  for ``org.key_unused_days`` (re-checked here, never from a stale finding), and only a key
  claudesec's key store knows is *not* one of its own: a managed, spare, retiring or orphaned
  key is retired through ``claudesec keys rotate``, whose overlap window keeps consumers
  working. Without the key store (``--keys``) no key is touched;
* **set a workspace spend limit** (``ORG-LIM-001``) to ``org.workspace_spend_limit``;
* **delete a stale invite** (``ORG-INV-001``).

Suppressed and baselined findings are left alone. Every change is written to the audit log
twice: its intent before the call (so a crash never leaves an unrecorded change) and its
outcome after. A run where some changes failed exits 4; where all failed, 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote

from claudesec.anthropic_admin import AdminClient
from claudesec.errors import ClaudesecError, ExitCode
from claudesec.org.check import CheckRun
from claudesec.org.checks.keys import unused_keys
from claudesec.org.checks.members import stale_invites
from claudesec.org.checks.platform import workspaces_without_spend_limit
from claudesec.org.model import OrgInventory
from claudesec.org.rules import CheckContext, NotApplicable, label

if TYPE_CHECKING:
    from claudesec.audit.store import AuditStore
    from claudesec.config import AuditConfig, OrgConfig

ActionKind = Literal["deactivate_key", "set_spend_limit", "delete_invite"]
EVENT_TYPE = "org_fix"
# Keys claudesec rotates: they leave service only through rotation's overlap path.
ROTATION_OWNED = frozenset({"managed", "spare", "retiring", "orphaned"})


@dataclass(frozen=True)
class FixAction:
    check_id: str
    kind: ActionKind
    target: str
    description: str
    skipped: str = ""  # why this change will not be made ("" = it will)
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FixPlan:
    actions: tuple[FixAction, ...]

    @property
    def to_apply(self) -> tuple[FixAction, ...]:
        return tuple(a for a in self.actions if not a.skipped)


@dataclass(frozen=True)
class FixResult:
    action: FixAction
    outcome: Literal["applied", "failed"]
    detail: str = ""


@dataclass(frozen=True)
class FixReport:
    results: tuple[FixResult, ...]

    @property
    def failed(self) -> tuple[FixResult, ...]:
        return tuple(r for r in self.results if r.outcome == "failed")

    @property
    def exit_code(self) -> ExitCode:
        if not self.failed:
            return ExitCode.OK
        return ExitCode.PARTIAL if len(self.failed) < len(self.results) else ExitCode.EXTERNAL


def _live(run: CheckRun, check_id: str) -> set[str]:
    """Resources with an unsuppressed finding of ``check_id`` in ``run``."""
    return {f.resource for f in run.findings if f.check_id == check_id}


def plan_fixes(
    run: CheckRun,
    inventory: OrgInventory,
    config: OrgConfig,
    *,
    key_markings: Mapping[str, str] | None,
) -> FixPlan:
    """What ``--fix`` would change, with the reason for each change it will not make."""
    ctx = CheckContext(config=config, now=run.checked_at, key_markings=key_markings)
    actions: list[FixAction] = []
    wanted = _live(run, "ORG-KEY-007")
    try:
        unused = [(k, m) for k, m in unused_keys(inventory, ctx) if str(k["id"]) in wanted]
    except NotApplicable:
        unused = []
    for key, message in unused:
        key_id = str(key["id"])
        marking = None if key_markings is None else key_markings.get(key_id, "unmanaged")
        skipped = ""
        if marking is None:
            skipped = (
                "claudesec's key store was not read (--keys): cannot prove it is not a key "
                "claudesec rotates"
            )
        elif marking in ROTATION_OWNED:
            skipped = (
                f"a {marking} key of claudesec: retire it with `claudesec keys rotate` "
                "(keeps the overlap window)"
            )
        actions.append(
            FixAction("ORG-KEY-007", "deactivate_key", key_id, f"deactivate: {message}", skipped)
        )
    amount, period = config.workspace_spend_limit, config.workspace_spend_period
    wanted = _live(run, "ORG-LIM-001")
    for ws in workspaces_without_spend_limit(inventory):
        if str(ws["id"]) not in wanted:
            continue
        skipped = "" if amount else "org.workspace_spend_limit is empty: no amount to set"
        actions.append(
            FixAction(
                "ORG-LIM-001",
                "set_spend_limit",
                str(ws["id"]),
                f"set a {period} spend limit of {amount or '?'} on workspace {label(ws)}",
                skipped,
                (("amount", amount), ("period", period)),
            )
        )
    wanted = _live(run, "ORG-INV-001")
    for invite in stale_invites(inventory, ctx):
        if str(invite["id"]) in wanted:
            actions.append(
                FixAction(
                    "ORG-INV-001",
                    "delete_invite",
                    str(invite["id"]),
                    f"delete stale invite {label(invite)}",
                )
            )
    return FixPlan(tuple(actions))


class OrgWriter(Protocol):
    """The Admin API writes ``--fix`` makes."""

    def deactivate_key(self, key_id: str) -> None: ...

    def set_spend_limit(self, workspace_id: str, amount: str, period: str) -> None: ...

    def delete_invite(self, invite_id: str) -> None: ...


class AdminOrgWriter(AdminClient):
    """:class:`OrgWriter` over the retrying Admin API client (same transport, same retries)."""

    def deactivate_key(self, key_id: str) -> None:
        self.set_status(key_id, "inactive")

    def set_spend_limit(self, workspace_id: str, amount: str, period: str) -> None:
        body = {
            "scope": {"type": "workspace", "workspace_id": workspace_id},
            "amount": amount,
            "period": period,
        }
        self._json("POST", "/v1/organizations/spend_limits", body)

    def delete_invite(self, invite_id: str) -> None:
        self._json("DELETE", f"/v1/organizations/invites/{quote(invite_id, safe='')}")


class AuditRecorder(Protocol):
    def record(self, step: str, action: FixAction, detail: str = "") -> None: ...


class StoreRecorder:
    """Writes ``org_fix`` events to the audit store, opened at the first change (a dry run or
    a run with nothing to fix creates no store). A failed write raises: a change that cannot
    be audited is not made."""

    def __init__(self, audit: AuditConfig) -> None:
        self.audit = audit
        self._store: AuditStore | None = None

    def record(self, step: str, action: FixAction, detail: str = "") -> None:
        from claudesec.audit.events import AuditEvent, Decision
        from claudesec.audit.store import AuditStore
        from claudesec.keys.events import safe_fields

        if self._store is None:
            self._store = AuditStore.from_config(self.audit)
        fields: dict[str, Any] = {
            "check": action.check_id,
            "action": action.kind,
            "target": action.target,
            "description": action.description,
            **dict(action.params),
        }
        if detail:
            fields["detail"] = detail
        self._store.append(
            AuditEvent(
                type=EVENT_TYPE,
                reason=step,
                decision=Decision.ERROR if step == "failed" else "",
                extra=safe_fields(fields),
            )
        )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def apply_fixes(plan: FixPlan, writer: OrgWriter, recorder: AuditRecorder) -> FixReport:
    """Make every planned change, one at a time; a failure does not stop the others."""
    results: list[FixResult] = []
    for action in plan.to_apply:
        recorder.record("planned", action)
        try:
            _apply(action, writer)
        except ClaudesecError as exc:
            detail = exc.message
            recorder.record("failed", action, detail)
            results.append(FixResult(action, "failed", detail))
            continue
        recorder.record("applied", action)
        results.append(FixResult(action, "applied"))
    return FixReport(tuple(results))


def _apply(action: FixAction, writer: OrgWriter) -> None:
    params = dict(action.params)
    if action.kind == "deactivate_key":
        writer.deactivate_key(action.target)
    elif action.kind == "set_spend_limit":
        writer.set_spend_limit(action.target, params["amount"], params["period"])
    else:
        writer.delete_invite(action.target)


def describe(plan: FixPlan) -> Sequence[str]:
    """One line per action, for the dry run."""
    lines = []
    for action in plan.actions:
        if action.skipped:
            lines.append(f"skip {action.check_id} {action.target}: {action.skipped}")
        else:
            lines.append(f"fix  {action.check_id} {action.target}: {action.description}")
    return lines

"""What is managed and what Anthropic says about it: ``keys status`` and ``keys remote``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from claudesec.errors import ClaudesecError, ExitCode
from claudesec.keys.model import ManagedKey, iso, parse_iso
from claudesec.stores.interface import CURRENT, PENDING, PREVIOUS

if TYPE_CHECKING:
    from claudesec.anthropic_admin import RemoteKey
    from claudesec.keys.model import PoolDoc
    from claudesec.keys.rotation import KeyManager, RevokeCheck

Marking = Literal["managed", "spare", "retiring", "retired", "revoked", "unmanaged", "orphaned"]


@dataclass(frozen=True)
class KeyStatus:
    name: str
    key_id: str
    key_hint: str
    age_days: float
    due_at: str
    overdue: bool
    stages: dict[str, str]  # stage -> key id
    anthropic_status: str
    last_used: str | None
    pending: bool
    # From the Admin API (empty offline): expiry (None: the key never expires), scope and
    # principal.
    expires_at: str | None = None
    scope: str = ""
    principal: str = ""
    remote: bool = False

    @property
    def never_expires(self) -> bool:
        return self.remote and self.expires_at is None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "key_id": self.key_id,
            "key_hint": self.key_hint,
            "age_days": round(self.age_days, 2),
            "due_at": self.due_at,
            "overdue": self.overdue,
            "stages": self.stages,
            "anthropic_status": self.anthropic_status,
            "last_used": self.last_used,
            "rotation_pending": self.pending,
            "expires_at": self.expires_at,
            "never_expires": self.never_expires,
            "scope": self.scope,
            "principal": self.principal,
        }


@dataclass(frozen=True)
class StatusReport:
    """``alerts`` are the warnings someone must act on (exit 1); ``warnings`` holds them too,
    in order, beside the informational ones."""

    keys: tuple[KeyStatus, ...]
    pool_size: int
    warnings: tuple[str, ...]
    alerts: tuple[str, ...] = ()
    revocations: tuple[RevokeCheck, ...] = ()

    @property
    def overdue(self) -> bool:
        return any(k.overdue for k in self.keys)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FOUND if self.overdue or self.alerts else ExitCode.OK

    def to_json(self) -> dict[str, object]:
        return {
            "exit_code": int(self.exit_code),
            "keys": [k.to_json() for k in self.keys],
            "pool_size": self.pool_size,
            "warnings": list(self.warnings),
            "alerts": list(self.alerts),
            "revocations_finished": [r.to_json() for r in self.revocations],
        }


@dataclass(frozen=True)
class RemoteEntry:
    key: RemoteKey
    marking: Marking
    secret: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.key.id,
            "name": self.key.name,
            "status": self.key.status,
            "partial_key_hint": self.key.partial_key_hint,
            "workspace_id": self.key.workspace_id,
            "created_at": self.key.created_at,
            "expires_at": self.key.expires_at,
            "scope": self.key.scope,
            "principal": self.key.principal,
            "marking": self.marking,
            "secret": self.secret,
        }


def _references(manager: KeyManager) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """key id -> (secret, stage) for labelled versions, and key id -> secret for older ones."""
    labelled: dict[str, tuple[str, str]] = {}
    older: dict[str, str] = {}
    for state in manager.managed():
        for version_id, stages in state.versions.items():
            try:
                value = manager.store.read(state.name, version_id=version_id)
                key_id = ManagedKey.from_json(value.text, secret=state.name).key_id
            except ClaudesecError:
                continue
            stage = next((s for s in (CURRENT, PENDING, PREVIOUS) if s in stages), "")
            if stage:
                labelled.setdefault(key_id, (state.name, stage))
            else:
                older[key_id] = state.name
    return labelled, older


class _Findings:
    """Warnings in the order found; the ones that need action are also alerts."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.alerts: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def alert(self, text: str) -> None:
        self.warnings.append(text)
        self.alerts.append(text)


def _revocations(manager: KeyManager, found: _Findings, remote: bool) -> list[RevokeCheck]:
    """Finish any revoke left undone (or undone in the Console), and say so: a recorded
    revoke is not trusted until the key has been seen refused."""
    if not remote:
        for entry in manager.pool.read().revoked.values():
            if not entry.finished:
                found.alert(
                    f"the revoke of {entry.key_id} ({entry.hint}) at {entry.at} is unfinished "
                    "(the key was never proved dead); run `claudesec keys status` online"
                )
        return []
    try:
        checks = manager.enforce_revocations()
    except ClaudesecError as exc:
        found.alert(f"a revoked key may still work: {exc.user_message()}")
        return []
    for check in checks:
        if check.was_active or check.found == "re-enabled":
            found.alert(check.describe())
        else:
            found.warn(check.describe())
    return checks


def _unfinished_rotation(
    manager: KeyManager, name: str, secret: str, pool: PoolDoc, now: datetime
) -> str | None:
    """Why the pending rotation of ``secret`` needs attention, or None if a run holds it."""
    lease = pool.leases.get(secret)
    if lease is not None and not lease.expired(now):
        return None
    claim = next((s.claim for s in pool.claimed_by(secret) if s.claim is not None), None)
    if claim is not None and claim.rejections >= manager.settings.stuck_after:
        return (
            f"{name}: the pending rotation is stuck (Anthropic refused its key in "
            f"{claim.rejections} runs); run `claudesec keys rotate {name} --abandon-pending`"
        )
    return (
        f"{name}: a rotation was left unfinished by an earlier run; "
        f"`claudesec keys rotate {name}` resumes it"
    )


def status(manager: KeyManager, *, remote: bool = True) -> StatusReport:
    """Age, due date, stages and Anthropic status of every managed key, and the pool.

    Online, it also finishes any revoke a previous run left undone (see
    :meth:`KeyManager.enforce_revocations`): a leaked key must not wait for a cron run.
    """
    now = manager.clock()
    remote_keys: dict[str, RemoteKey] = {}
    found = _Findings()
    warnings = found.warnings
    if remote:
        remote_keys = {k.id: k for k in manager.admin.list_keys()}
    checks = _revocations(manager, found, remote)
    if checks:
        remote_keys = {k.id: k for k in manager.admin.list_keys()}
    pool = manager.pool.read()
    results: list[KeyStatus] = []
    managed, missing = manager.inventory()
    if not managed:
        found.warn(manager.empty_notice())
    for gone in missing:
        found.alert(gone.message(manager.where))
    for state in managed:
        stages: dict[str, str] = {}
        current: ManagedKey | None = None
        for stage in (CURRENT, PENDING, PREVIOUS):
            version = state.version_with(stage)
            if version is None:
                continue
            value = manager.store.read(state.name, version_id=version)
            key = ManagedKey.from_json(value.text, secret=state.name)
            stages[stage] = key.key_id
            if stage == CURRENT:
                current = key
        if current is None:
            warnings.append(f"{state.name} has no AWSCURRENT version")
            continue
        created = parse_iso(current.created_at) or now
        due = created + manager.settings.max_age
        remote_key = remote_keys.get(current.key_id)
        anthropic_status = remote_key.status if remote_key else ("unknown" if remote else "")
        name = manager.short_name(state.name)
        if due <= now:
            warnings.append(f"{name}: key {current.key_id} is past its max age")
        revoked = pool.revoked.get(current.key_id)
        if revoked is not None:
            found.alert(
                f"{name}: the current key {current.key_id} ({current.hint}) was revoked at "
                f"{revoked.at} and has no replacement yet; load spares with `claudesec keys "
                f"pool add`, then `claudesec keys rotate {name}`"
            )
        elif remote and anthropic_status != "active":
            found.alert(f"{name}: current key {current.key_id} is {anthropic_status}")
        pending_v = state.version_with(PENDING)
        if pending_v is not None and pending_v != state.version_with(CURRENT):
            why = _unfinished_rotation(manager, name, state.name, pool, now)
            if why is not None:
                found.alert(why)
        results.append(
            KeyStatus(
                name=name,
                key_id=current.key_id,
                key_hint=current.hint,
                age_days=(now - created).total_seconds() / 86400,
                due_at=iso(due),
                overdue=due <= now,
                stages=stages,
                anthropic_status=anthropic_status,
                last_used=None,  # the Admin API does not report it
                pending=pending_v is not None and pending_v != state.version_with(CURRENT),
                expires_at=remote_key.expires_at if remote_key else None,
                scope=remote_key.scope if remote_key else "",
                principal=remote_key.principal if remote_key else "",
                remote=remote_key is not None,
            )
        )
        if remote_key is not None and remote_key.expires_at is None:
            # Informational: rotation bounds its life, but a leak of it works until revoked.
            warnings.append(
                f"{name}: key {current.key_id} never expires (a leak works until it is "
                "revoked); move its workload to federation (`claudesec federation migrate`)"
            )
    free = len(pool.unclaimed())
    if free < manager.settings.low_watermark:
        warnings.append(
            f"pool low: {free} spare key(s) left (watermark {manager.settings.low_watermark})"
        )
    if remote:
        for entry in remote_inventory(manager, remote_keys=list(remote_keys.values())):
            if entry.marking == "unmanaged" and entry.key.status == "active":
                never = ", never expires" if entry.key.expires_at is None else ""
                warnings.append(f"unmanaged active key {entry.key.id} ({entry.key.name}{never})")
            if entry.marking == "spare" and entry.key.status == "active":
                warnings.append(f"spare key {entry.key.id} is active: deactivate it")
            if entry.marking == "orphaned" and entry.key.status == "active":
                warnings.append(f"orphaned active key {entry.key.id} (was in {entry.secret})")
    return StatusReport(
        keys=tuple(results),
        pool_size=free,
        warnings=tuple(warnings),
        alerts=tuple(found.alerts),
        revocations=tuple(checks),
    )


def remote_inventory(
    manager: KeyManager, *, remote_keys: list[RemoteKey] | None = None
) -> list[RemoteEntry]:
    """The organisation's API keys, each marked managed, spare, retiring, retired (an old
    version's key, now inactive), revoked (by `keys revoke`: it says so whatever stage label
    it still carries), unmanaged, or orphaned (an old version's key that is still active
    although nothing schedules its retirement)."""
    keys = remote_keys if remote_keys is not None else manager.admin.list_keys()
    labelled, older = _references(manager)
    pool = manager.pool.read()
    spares = {s.key_id: s for s in pool.spares}
    retiring = {r.key_id: r.secret for r in pool.retiring}
    entries: list[RemoteEntry] = []
    for key in keys:
        marking: Marking
        if key.id in pool.revoked:
            marking, where = "revoked", manager.short_name(pool.revoked[key.id].secret)
        elif key.id in labelled:
            secret, stage = labelled[key.id]
            marking = "managed"
            where = f"{manager.short_name(secret)}:{stage}"
        elif key.id in spares:
            claim = spares[key.id].claim
            marking, where = "spare", (manager.short_name(claim.secret) if claim else "")
        elif key.id in retiring:
            marking, where = "retiring", manager.short_name(retiring[key.id])
        elif key.id in older:
            marking = "orphaned" if key.status == "active" else "retired"
            where = manager.short_name(older[key.id])
        else:
            marking, where = "unmanaged", ""
        entries.append(RemoteEntry(key=key, marking=marking, secret=where))
    return entries

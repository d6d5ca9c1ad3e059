"""``federation migrate``: who still calls with static keys, a rule to propose for each, and
the retirement of keys their workloads no longer need.

Evidence comes from two places. The audit log's call records say which credential each call
went out with (``upstream``: a key's hint, or the federated identity; see
:mod:`claudesec.guard.upstream`) and who made it. The Admin API lists the organisation's keys
(matched to the log by Anthropic's own ``partial_key_hint``, the format claudesec's hints use)
with their expiry, and its usage report shows calls with a key that never went through
claudesec.

Retirement keeps rotation's overlap safety: a key is deactivated only when every caller the
log ever saw with it has run on federation for ``min_federated_days`` and is still doing so,
the log shows no call with the key in that window, the Admin API's usage report shows none
either, and the key is not in service for ``claudesec keys`` (a managed secret's version, an
overlap window). Anything short of that keeps the key and says why. Dry run unless told to act;
every deactivation is an audit event (``key_rotation`` / ``federation_retire``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from claudesec.errors import ClaudesecError, ExitCode, ExternalServiceError, UsageError

if TYPE_CHECKING:
    import sqlite3

    from claudesec.anthropic_admin import AdminClient, RemoteKey
    from claudesec.keys.events import AuditSink

DEFAULT_MIN_FEDERATED_DAYS = 7
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass
class _Seen:
    users: set[str] = field(default_factory=set)
    calls: int = 0
    first_ns: int = 0
    last_ns: int = 0
    issuer: str = ""

    def add(self, user: str, time_ns: int) -> None:
        if user:
            self.users.add(user)
        self.calls += 1
        self.first_ns = time_ns if not self.first_ns else min(self.first_ns, time_ns)
        self.last_ns = max(self.last_ns, time_ns)


@dataclass(frozen=True)
class StaticCaller:
    """A static key seen in the audit log, and what the Admin API says of it."""

    key_hint: str
    key_id: str  # "" when the Admin API does not list it (another organisation, deleted)
    key_name: str
    status: str
    expires_at: str | None
    workspace_id: str | None
    users: tuple[str, ...]
    calls: int
    first_seen: str
    last_seen: str

    def to_json(self) -> dict[str, object]:
        return {
            "key_hint": self.key_hint,
            "key_id": self.key_id,
            "key_name": self.key_name,
            "status": self.status,
            "expires_at": self.expires_at,
            "never_expires": bool(self.key_id) and self.expires_at is None,
            "workspace_id": self.workspace_id,
            "users": list(self.users),
            "calls": self.calls,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


@dataclass(frozen=True)
class FederatedWorkload:
    rule_id: str
    subject: str
    issuer: str
    users: tuple[str, ...]
    calls: int
    first_seen: str
    last_seen: str

    def to_json(self) -> dict[str, object]:
        return {
            "rule_id": self.rule_id,
            "subject": self.subject,
            "issuer": self.issuer,
            "users": list(self.users),
            "calls": self.calls,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


Action = Literal["deactivated", "would_deactivate", "kept", "already_inactive"]


@dataclass(frozen=True)
class Retirement:
    key_id: str
    key_hint: str
    action: Action
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "key_hint": self.key_hint,
            "action": self.action,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class MigrationReport:
    """``static``: keys still used by callers; ``never_expiring``: active keys with no
    ``expires_at`` (used or not); ``proposals``: TOML, one rule per static workload."""

    static: tuple[StaticCaller, ...]
    federated: tuple[FederatedWorkload, ...]
    never_expiring: tuple[RemoteKey, ...]
    proposals: str
    retirements: tuple[Retirement, ...] = ()
    since: str = ""

    @property
    def exit_code(self) -> ExitCode:
        """1 while a static key is still used or a non-expiring key is active; 0 otherwise."""
        if any(r.action == "deactivated" for r in self.retirements):
            return ExitCode.OK
        return ExitCode.FOUND if self.static or self.never_expiring else ExitCode.OK

    def to_json(self) -> dict[str, object]:
        return {
            "exit_code": int(self.exit_code),
            "since": self.since,
            "static": [s.to_json() for s in self.static],
            "federated": [f.to_json() for f in self.federated],
            "never_expiring": [
                {"key_id": k.id, "name": k.name, "partial_key_hint": k.partial_key_hint}
                for k in self.never_expiring
            ],
            "proposals": self.proposals,
            "retirements": [r.to_json() for r in self.retirements],
        }


# --------------------------------------------------------------------------- the audit log


@dataclass(frozen=True)
class AuditEvidence:
    """Call records grouped by the credential they went out with."""

    static: Mapping[str, _Seen]  # key hint -> callers
    federated: Mapping[tuple[str, str], _Seen]  # (rule id, subject) -> callers
    federated_by_user: Mapping[str, _Seen]

    @classmethod
    def read(cls, conn: sqlite3.Connection, since_ns: int = 0) -> AuditEvidence:
        static: dict[str, _Seen] = {}
        federated: dict[tuple[str, str], _Seen] = {}
        by_user: dict[str, _Seen] = {}
        # Only records that carry an upstream (claudesec records written before it existed
        # say nothing about the credential).
        rows = conn.execute(
            "SELECT time_ns, user, body FROM events WHERE type = 'call' AND time_ns >= ? "
            "AND body LIKE '%\"upstream\"%' ORDER BY seq",
            (since_ns,),
        )
        for time_ns, user, body in rows:
            upstream = _upstream(body)
            kind = upstream.get("kind")
            if kind == "api_key" and upstream.get("key_hint"):
                static.setdefault(upstream["key_hint"], _Seen()).add(user, int(time_ns))
            elif kind == "federation":
                key = (upstream.get("rule_id", ""), upstream.get("subject", ""))
                seen = federated.setdefault(key, _Seen(issuer=upstream.get("issuer", "")))
                seen.add(user, int(time_ns))
                by_user.setdefault(user, _Seen()).add(user, int(time_ns))
        return cls(static, federated, by_user)


def _upstream(body: str) -> dict[str, str]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    found = data.get("upstream") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, str)}


def _iso(time_ns: int) -> str:
    if not time_ns:
        return ""
    return datetime.fromtimestamp(time_ns / 1e9, UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- the report


def report(
    evidence: AuditEvidence,
    keys: Sequence[RemoteKey],
    *,
    since: datetime | None = None,
) -> MigrationReport:
    """Static callers (newest use first), federated workloads, non-expiring keys, proposals."""
    by_hint = {k.partial_key_hint: k for k in keys if k.partial_key_hint}
    static: list[StaticCaller] = []
    for hint, seen in evidence.static.items():
        remote = by_hint.get(hint)
        static.append(
            StaticCaller(
                key_hint=hint,
                key_id=remote.id if remote else "",
                key_name=remote.name if remote else "",
                status=remote.status if remote else "unknown",
                expires_at=remote.expires_at if remote else None,
                workspace_id=remote.workspace_id if remote else None,
                users=tuple(sorted(seen.users)),
                calls=seen.calls,
                first_seen=_iso(seen.first_ns),
                last_seen=_iso(seen.last_ns),
            )
        )
    static.sort(key=lambda s: s.last_seen, reverse=True)
    federated = [
        FederatedWorkload(
            rule_id=rule,
            subject=subject,
            issuer=seen.issuer,
            users=tuple(sorted(seen.users)),
            calls=seen.calls,
            first_seen=_iso(seen.first_ns),
            last_seen=_iso(seen.last_ns),
        )
        for (rule, subject), seen in evidence.federated.items()
    ]
    never = tuple(k for k in keys if k.status == "active" and k.expires_at is None)
    return MigrationReport(
        static=tuple(static),
        federated=tuple(federated),
        never_expiring=never,
        proposals=proposals([s for s in static if s.status in ("active", "unknown")]),
        since=since.isoformat(timespec="seconds") if since else "",
    )


def _slug(text: str, fallback: str) -> str:
    slug = _SLUG.sub("-", text.lower()).strip("-")[:64].strip("-")
    return slug or fallback


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def proposals(static: Iterable[StaticCaller]) -> str:
    """One ``[[federation.rules]]`` per static workload, in the config schema.

    What the log and the Admin API know is filled in (a name from the key's, the workspace);
    what only the operator knows (the workload's issuer and repository, ref, environment) is
    a placeholder marked ``# fill in``: ``federation plan`` refuses the placeholders, so an
    unreviewed proposal cannot be applied by accident.
    """
    blocks: list[str] = []
    used: set[str] = set()
    for caller in static:
        base = _slug(caller.key_name or (caller.users[0] if caller.users else ""), "workload")
        name, n = base, 2
        while name in used:
            name, n = f"{base[:60]}-{n}", n + 1
        used.add(name)
        who = ", ".join(caller.users) or "unknown callers"
        key = caller.key_id or "a key the Admin API does not list"
        lines = [
            f"# {key} ({caller.key_hint}): {caller.calls} call(s) by {who}, "
            f"last {caller.last_seen}"
            + ("; never expires" if caller.key_id and caller.expires_at is None else ""),
            "[[federation.rules]]",
            f"name = {_toml_string(name)}",
            'issuer = "github-actions"            # fill in: the workload\'s issuer',
            f"service_account = {_toml_string(name)}",
            f"workspace = {_toml_string(caller.workspace_id or 'default')}",
            'repository = "OWNER/REPO"            # fill in (github-actions preset)',
            'ref = "refs/heads/main"',
            'environment = "FILL-IN"              # fill in: the deployment environment',
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


# --------------------------------------------------------------------------- retirement


@dataclass(frozen=True)
class RetirePolicy:
    min_federated_days: int = DEFAULT_MIN_FEDERATED_DAYS
    act: bool = False  # False: dry run


def retire(
    key_ids: Sequence[str],
    *,
    evidence: AuditEvidence,
    admin: AdminClient,
    sink: AuditSink,
    policy: RetirePolicy,
    now: datetime,
    in_service: Callable[[str], str | None] | None = None,
) -> tuple[Retirement, ...]:
    """Deactivate each key whose workload has moved to federation (see the module docstring)."""
    if policy.min_federated_days < 1:
        raise UsageError("--min-federated-days must be at least 1")
    window = timedelta(days=policy.min_federated_days)
    start = now - window
    start_ns = int(start.timestamp() * 1e9)
    keys = {k.id: k for k in admin.list_keys()}
    used_by_anthropic = _used_in_window(admin, start)
    results: list[Retirement] = []
    for key_id in key_ids:
        remote = keys.get(key_id)
        if remote is None:
            raise UsageError(
                f"key {key_id} is not in the organisation's key list",
                hint="`claudesec keys remote` lists the key ids",
            )
        hint = remote.partial_key_hint
        why = _keep_reason(remote, evidence, start_ns, policy.min_federated_days)
        if why is None and key_id in used_by_anthropic:
            why = (
                f"the Admin API's usage report shows calls with it in the last "
                f"{policy.min_federated_days} day(s) (some traffic bypasses claudesec)"
            )
        if why is None and in_service is not None:
            why = in_service(key_id)
        if remote.status != "active" and why is None:
            results.append(Retirement(key_id, hint, "already_inactive", remote.status))
            continue
        if why is not None:
            results.append(Retirement(key_id, hint, "kept", why))
            continue
        ready = (
            f"every caller has run on federation for {policy.min_federated_days}+ day(s) with "
            "no static use since"
        )
        if not policy.act:
            results.append(Retirement(key_id, hint, "would_deactivate", ready))
            continue
        results.append(_deactivate(admin, sink, remote, ready, policy))
    return tuple(results)


def _keep_reason(
    remote: RemoteKey, evidence: AuditEvidence, start_ns: int, days: int
) -> str | None:
    seen = evidence.static.get(remote.partial_key_hint)
    if seen is None or not seen.users:
        # Nothing proves where its traffic went: it may be used outside claudesec entirely.
        return "the audit log never saw it used by a known caller, so no workload is proven moved"
    if seen.last_ns >= start_ns:
        return f"used with the static key on {_iso(seen.last_ns)}, within the last {days} day(s)"
    for user in sorted(seen.users):
        fed = evidence.federated_by_user.get(user)
        if fed is None:
            return f"{user} has never called on federation"
        if fed.first_ns > start_ns:
            return f"{user} has run on federation only since {_iso(fed.first_ns)}"
        if fed.last_ns < start_ns:
            return f"{user} has made no federated call in the last {days} day(s)"
    return None


def _used_in_window(admin: AdminClient, start: datetime) -> set[str]:
    try:
        rows = admin.usage_report(starting_at=start, group_by=["api_key_id"])
    except ClaudesecError as exc:
        # Without the usage report nothing proves the key idle outside claudesec: keep all.
        raise ExternalServiceError(
            f"cannot read the Admin API's usage report: {exc.message}",
            hint="retirement needs it to prove no traffic bypasses claudesec",
        ) from None
    return {r.api_key_id for r in rows if r.api_key_id and (r.input_tokens or r.output_tokens)}


def _deactivate(
    admin: AdminClient, sink: AuditSink, remote: RemoteKey, why: str, policy: RetirePolicy
) -> Retirement:
    fields: dict[str, Any] = {
        "key_id": remote.id,
        "key_hint": remote.partial_key_hint,
        "min_federated_days": policy.min_federated_days,
    }
    # Written before the change: a store that cannot record it stops the change.
    sink.record("key_rotation", step="federation_retire", outcome="started", why=why, **fields)
    after = admin.set_status(remote.id, "inactive")
    # The key's secret is not ours (the workload held it): the status read back is the proof.
    verified = admin.retrieve_key(remote.id).status != "active" and after.status != "active"
    sink.record(
        "key_rotation",
        step="federation_retire",
        outcome="ok" if verified else "failed",
        verified=verified,
        **fields,
    )
    if not verified:
        raise ExternalServiceError(
            f"key {remote.id} still reads active after deactivation",
            hint="deactivate it in the Console now",
        )
    return Retirement(remote.id, remote.partial_key_hint, "deactivated", why)

"""From a leaked live key to a dead one: identify it through the Admin API, then revoke it.

``scan --verify`` proves a found Anthropic API key live; this module says whose it is and,
when asked (``scan --revoke``, or ``scan.on_live_key = "revoke"``), kills it through the very
code ``keys revoke`` runs:

- **identify**: the key's ``partial_key_hint`` (prefix, 3 + 4 visible characters) matched
  against the organisation's keys gives its id, name, workspace, creator and status; the key
  store says whether claudesec manages it (``AWSCURRENT`` / ``AWSPREVIOUS`` of a managed
  secret, or a spare of the pool). Two keys can share a hint: when they do, the one whose
  stored value *is* the leaked key (a managed key) is certain; otherwise claudesec refuses to
  guess and names the candidates, because deactivating the wrong key breaks someone else.
- **revoke**: a managed key goes through :meth:`KeyManager.revoke` (recorded as revoked,
  deactivated and proved by a 401, then a spare promoted so consumers that re-read the secret
  keep working); any other key through :meth:`KeyManager.deactivate`, the step that ends every
  revoke (deactivate, then prove the key itself now answers 401). Every step is an audit event
  of the manager's sink; the outcome is one more (``leak_response``).

Nothing here prints; the scan command renders :class:`LeakResponse` and sends the alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from claudesec.errors import ClaudesecError, ExitCode
from claudesec.keys.model import ManagedKey
from claudesec.redact import redact
from claudesec.stores.interface import CURRENT, PREVIOUS

if TYPE_CHECKING:
    from claudesec.anthropic_admin import RemoteKey
    from claudesec.keys.rotation import KeyManager

Action = Literal["identified", "revoked", "rotated", "refused", "failed"]
# The name audit events carry for a key no managed secret holds.
UNMANAGED = "(unmanaged)"
EVENT = "leak_response"


@dataclass(frozen=True)
class KeyIdentity:
    """Who a leaked key belongs to, as the Admin API and the key store know it."""

    key_id: str
    hint: str
    name: str
    workspace_id: str | None
    created_by: str
    status: str
    # The managed secret that holds it ("" if none), and where: AWSCURRENT, AWSPREVIOUS, spare.
    managed_as: str = ""
    stage: str = ""
    # Why "managed" could not be decided (the key store was unreadable), if it could not.
    managed_unknown: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "hint": self.hint,
            "name": self.name,
            "workspace_id": self.workspace_id,
            "created_by": self.created_by,
            "status": self.status,
            "managed": bool(self.managed_as),
            "managed_as": self.managed_as or None,
            "stage": self.stage or None,
            **({"managed_unknown": self.managed_unknown} if self.managed_unknown else {}),
        }


@dataclass(frozen=True)
class LeakResponse:
    """What was done about one live key."""

    hint: str
    action: Action
    message: str
    identity: KeyIdentity | None = None
    # The key that replaced a revoked managed key (its id), if one did.
    replacement_id: str = ""

    @property
    def exit_code(self) -> int:
        """3 when the key may still be live because a service failed, else 0 (the finding
        itself decides whether the scan fails)."""
        return int(ExitCode.EXTERNAL) if self.action == "failed" else int(ExitCode.OK)

    def to_json(self) -> dict[str, object]:
        return {
            "hint": self.hint,
            "action": self.action,
            "message": self.message,
            "key": self.identity.to_json() if self.identity else None,
            "replacement_id": self.replacement_id or None,
        }


class AmbiguousKey(ClaudesecError):
    """Several keys share the leaked key's hint and nothing tells them apart."""


def _stored_keys(manager: KeyManager) -> tuple[dict[str, tuple[str, str, str]], str]:
    """key id -> (managed secret, stage, key) of every key claudesec holds, and why that is
    unknown if the store could not be read."""
    held: dict[str, tuple[str, str, str]] = {}
    try:
        for state in manager.managed():
            for stage in (CURRENT, PREVIOUS):
                version = state.version_with(stage)
                if version is None:
                    continue
                value = manager.store.read(state.name, version_id=version)
                managed = ManagedKey.from_json(value.text, secret=state.name)
                held.setdefault(managed.key_id, (state.name, stage, managed.key))
        for spare in manager.pool.read().spares:
            held.setdefault(spare.key_id, (manager.settings.pool_secret, "spare", ""))
    except ClaudesecError as exc:
        return held, exc.user_message()
    return held, ""


def identify(manager: KeyManager, key: str) -> KeyIdentity:
    """The organisation's record of ``key`` and whether claudesec manages it.

    Raises :class:`AmbiguousKey` when several keys share its hint and none of them is known
    by value, and a ``UsageError`` when no key of the organisation has it.
    """
    from claudesec.errors import UsageError

    hint = redact(key)
    candidates = [k for k in manager.admin.list_keys() if k.partial_key_hint == hint]
    held, unknown = _stored_keys(manager)
    if len(candidates) > 1:
        # Certain, not a guess: claudesec holds this very key under one of the ids.
        exact = [k for k in candidates if k.id in held and held[k.id][2] == key]
        if len(exact) != 1:
            ids = ", ".join(k.id for k in candidates)
            raise AmbiguousKey(
                f"{len(candidates)} keys share the hint {hint} ({ids}); claudesec will not "
                "guess which one leaked",
                hint="deactivate it in the Console (Settings > API keys), or `claudesec keys "
                "revoke NAME --key-id ID` if it is managed",
            )
        candidates = exact
    if not candidates:
        raise UsageError(
            f"no API key with the hint {hint} in the organisation of the Admin API key",
            hint="revoke it in the Console of the organisation it belongs to",
        )
    remote: RemoteKey = candidates[0]
    secret, stage, _ = held.get(remote.id, ("", "", ""))
    return KeyIdentity(
        key_id=remote.id,
        hint=hint,
        name=remote.name,
        workspace_id=remote.workspace_id,
        created_by=remote.created_by,
        status=remote.status,
        managed_as=manager.short_name(secret) if secret else "",
        stage=stage,
        managed_unknown=unknown,
    )


def respond(manager: KeyManager, key: str, *, revoke: bool, where: str = "") -> LeakResponse:
    """Identify ``key`` (found live at ``where``) and, if ``revoke``, deactivate it now."""
    hint = redact(key)
    try:
        identity = identify(manager, key)
    except ClaudesecError as exc:
        action: Action = "failed" if exc.exit_code == ExitCode.EXTERNAL else "refused"
        response = LeakResponse(hint, action, exc.user_message())
        _record(manager, response, where)
        return response
    if not revoke:
        response = LeakResponse(hint, "identified", _describe(identity), identity)
        _record(manager, response, where)
        return response
    try:
        response = _revoke(manager, key, identity)
    except ClaudesecError as exc:
        response = LeakResponse(hint, "failed", exc.user_message(), identity)
    _record(manager, response, where)
    return response


def _describe(identity: KeyIdentity) -> str:
    owner = f"key {identity.key_id} ({identity.name or 'unnamed'})"
    where = f"workspace {identity.workspace_id or 'default'}, created by {identity.created_by}"
    if identity.managed_as:
        return f"{owner}, {where}; claudesec manages it as {identity.managed_as} {identity.stage}"
    if identity.managed_unknown:
        return f"{owner}, {where}; managed: unknown ({identity.managed_unknown})"
    return f"{owner}, {where}; not managed by claudesec"


def _revoke(manager: KeyManager, key: str, identity: KeyIdentity) -> LeakResponse:
    described = _describe(identity)
    if identity.managed_as and identity.stage in (CURRENT, PREVIOUS):
        result = manager.revoke(identity.managed_as, key_id=identity.key_id)
        if result.rotated:
            return LeakResponse(
                identity.hint,
                "rotated",
                f"{described}: revoked; {result.message}",
                identity,
                replacement_id=result.key_id,
            )
        if result.outcome in ("revoked", "already_done") or not result.exit_code:
            return LeakResponse(
                identity.hint, "revoked", f"{described}: {result.message}", identity
            )
        return LeakResponse(identity.hint, "failed", f"{described}: {result.message}", identity)
    secret = manager.settings.pool_secret if identity.stage == "spare" else UNMANAGED
    manager.deactivate(secret, identity.key_id, key, step="revoke")
    return LeakResponse(
        identity.hint, "revoked", f"{described}: deactivated, now answers 401", identity
    )


def _record(manager: KeyManager, response: LeakResponse, where: str) -> None:
    identity = response.identity
    manager.sink.record(
        EVENT,
        step=EVENT,
        secret=identity.managed_as if identity and identity.managed_as else UNMANAGED,
        key_id=identity.key_id if identity else None,
        key_hint=response.hint,
        workspace_id=identity.workspace_id if identity else None,
        action=response.action,
        found_at=where or None,
        outcome="failed" if response.action == "failed" else "ok",
    )

"""Managed keys: add, pool, rotate (the four-step protocol), retire, roll back, revoke.

Rotation of one secret, each step checking the labels first so a rerun resumes:

1. createSecret: claim a spare in the pool (claim = secret + token, written *before* the
   pending version), write ``{key_id, key, name, workspace, created_at}`` as ``AWSPENDING``
   under that token. A pending version left by a dead run is resumed with its own id.
2. setSecret: activate the spare through the Admin API.
3. testSecret: an authenticated call with it must succeed.
4. finishSecret: move ``AWSCURRENT`` to it (``AWSPREVIOUS`` follows), drop ``AWSPENDING``.
   A version holding both labels means a run died between those two moves: finished.

Then book-keeping keyed on the ``claudesec:rotated-version`` tag: the old key is scheduled
for retirement ``overlap_hours`` later and the spare leaves the pool. Retirement happens in
a later run: deactivate, then prove the key answers 401. The previous key is never touched
before finish. A lease in the pool document keeps two runs off one secret; a dead holder's
lease simply expires, and a live holder renews it between steps (a slow Admin API or a long
``--all`` must not let a second run in halfway through).

Keys revoked with ``keys revoke`` are remembered in the pool document; rollback, a pending
rotation, ``add`` and ``pool add`` refuse to bring one back. A pending rotation whose spare
can never work (archived, deleted in the Console, refused run after run) is reported with
the command that undoes it, :meth:`KeyManager.abandon_pending`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from claudesec.errors import (
    CheckFailed,
    ClaudesecError,
    ExitCode,
    ExternalServiceError,
    UsageError,
)
from claudesec.keys.events import AuditSink, NullSink
from claudesec.keys.inventory import Missing, SeenKeys
from claudesec.keys.model import (
    KIND_MANAGED,
    TAG_KIND,
    TAG_ROLLBACK_AT,
    TAG_ROLLBACK_FROM,
    TAG_ROLLBACK_TO,
    TAG_ROTATED_AT,
    TAG_ROTATED_VERSION,
    ManagedKey,
    PoolDoc,
    Retiring,
    Revoked,
    Spare,
    iso,
    parse_iso,
    utcnow,
)
from claudesec.keys.pool import Pool, PoolEmpty
from claudesec.redact import redact
from claudesec.stores.interface import (
    CURRENT,
    PENDING,
    PREVIOUS,
    KeyStore,
    SecretState,
)

if TYPE_CHECKING:
    from claudesec.anthropic_admin import AdminClient, ProbeResult, RemoteKey
    from claudesec.config import Config

Outcome = Literal[
    "rotated",
    "not_due",
    "locked",
    "pool_empty",
    "failed",
    "would_rotate",
    "would_resume",
    "rolled_back",
    "already_done",
    "revoked",
]
Probe = Callable[[str], "ProbeResult"]
# A rerun of ``keys revoke`` this soon after a revoke that promoted a replacement is taken
# for a retry (its reply was lost); later, the new current key must be named to be revoked.
RETRY_WINDOW = timedelta(hours=1)
# ``keys pool add`` refuses a key with calls in the usage report this recent.
RECENT_USE = timedelta(days=7)
Clock = Callable[[], datetime]
EVENT = "key_rotation"


class RotationFailed(ExternalServiceError):
    """A rotation step failed; the next run resumes it (exit 3)."""


class KeyRevoked(UsageError):
    """Something asked claudesec to put a revoked key back in service (exit 2)."""


class PendingStuck(CheckFailed):
    """A pending rotation can never finish: its spare is archived, gone or always refused.

    Rerunning cannot fix it (exit 1); ``keys rotate NAME --abandon-pending`` does.
    """


class LeaseLost(ExternalServiceError):
    """Another run took this secret's lease: stop before the next change (exit 3)."""


def abandon_command(name: str) -> str:
    return f"`claudesec keys rotate {name} --abandon-pending`"


@dataclass(frozen=True)
class Settings:
    prefix: str = "claudesec/"
    pool_secret: str = "claudesec/pool"  # noqa: S105 - a secret's name, not a secret
    max_age: timedelta = timedelta(days=90)
    overlap: timedelta = timedelta(hours=24)
    lease_s: int = 600
    test_attempts: int = 3
    test_delay_s: float = 2.0
    low_watermark: int = 2
    # Runs in a row whose testSecret saw the activated spare refused before claudesec calls
    # the rotation stuck: one refusal can be Anthropic's activation still propagating.
    stuck_after: int = 3

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        keys = config.keys
        return cls(
            prefix=keys.secret_prefix,
            pool_secret=keys.pool_secret,
            max_age=timedelta(days=keys.max_age_days),
            overlap=timedelta(hours=keys.overlap_hours),
            lease_s=keys.lease_seconds,
            test_attempts=max(1, keys.test_attempts),
            test_delay_s=keys.test_retry_delay_s,
            low_watermark=keys.pool_low_watermark,
        )


@dataclass(frozen=True)
class KeyResult:
    """What one run did to one managed key."""

    name: str
    outcome: Outcome
    message: str = ""
    rotated: bool = False
    key_id: str = ""
    key_hint: str = ""
    previous_key_id: str = ""
    steps: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()
    due_at: str = ""
    exit_code: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "rotated": self.rotated,
            "key_id": self.key_id,
            "key_hint": self.key_hint,
            "previous_key_id": self.previous_key_id,
            "steps": list(self.steps),
            "retired": list(self.retired),
            "due_at": self.due_at,
            "message": self.message,
        }


@dataclass(frozen=True)
class RotationReport:
    results: tuple[KeyResult, ...]
    pool_size: int | None  # None: the pool could not be read (the outage the results name)
    dry_run: bool = False
    notices: tuple[str, ...] = ()  # for stderr: e.g. that the store holds no managed key

    @property
    def exit_code(self) -> ExitCode:
        failed = [r for r in self.results if r.outcome == "failed"]
        if failed:
            if any(r.rotated for r in self.results):
                return ExitCode.PARTIAL
            codes = {r.exit_code for r in failed}
            # One kind of failure keeps its meaning (2: refused, e.g. a revoked key; 1: stuck,
            # act on it); a mix is reported as a failed run.
            if len(codes) == 1 and codes <= {ExitCode.USAGE, ExitCode.FOUND}:
                return ExitCode(codes.pop())
            return ExitCode.EXTERNAL
        if any(r.outcome == "pool_empty" for r in self.results):
            return ExitCode.FOUND
        return ExitCode.OK

    def to_json(self) -> dict[str, object]:
        return {
            "exit_code": int(self.exit_code),
            "dry_run": self.dry_run,
            "pool_size": self.pool_size,
            "keys": [r.to_json() for r in self.results],
            "warnings": list(self.notices),
        }


@dataclass
class _Run:
    name: str
    steps: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    owner: str = ""  # the lease holder; empty for work done without a lease
    renewed_at: datetime | None = None
    notes: list[str] = field(default_factory=list)  # what the result's message must say


@dataclass(frozen=True)
class RevokeCheck:
    """A revoked key a run found still able to work, and made refuse calls."""

    key_id: str
    hint: str
    secret: str
    revoked_at: str
    found: Literal["unfinished", "re-enabled"]
    was_active: bool

    def describe(self) -> str:
        if self.found == "re-enabled":
            return (
                f"revoked key {self.key_id} ({self.hint}) was re-enabled in the Console; "
                "deactivated it again (verified 401)"
            )
        what = "was still active" if self.was_active else "was not yet proved dead"
        return (
            f"the revoke of {self.key_id} ({self.hint}) at {self.revoked_at} was left "
            f"unfinished and the key {what}; finished it now (verified 401)"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "key_hint": self.hint,
            "secret": self.secret,
            "revoked_at": self.revoked_at,
            "found": self.found,
            "was_active": self.was_active,
        }


@dataclass(frozen=True)
class Abandoned:
    """What ``abandon_pending`` did with one key the pending rotation held."""

    key_id: str
    key_hint: str
    disposition: Literal["returned", "discarded", "kept"]
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "key_hint": self.key_hint,
            "disposition": self.disposition,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class AbandonResult:
    name: str
    current_key_id: str
    pending_version: str | None
    keys: tuple[Abandoned, ...]

    @property
    def nothing_pending(self) -> bool:
        return self.pending_version is None and not self.keys

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "current_key_id": self.current_key_id,
            "pending_version": self.pending_version,
            "nothing_pending": self.nothing_pending,
            "keys": [k.to_json() for k in self.keys],
        }


class KeyManager:
    """Managed keys in one store, the pool beside them, and the Admin API."""

    def __init__(
        self,
        store: KeyStore,
        settings: Settings,
        *,
        admin: AdminClient | None = None,
        probe: Probe | None = None,
        sink: AuditSink | None = None,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        expected: Sequence[str] = (),
        seen: SeenKeys | None = None,
    ) -> None:
        self.expected = tuple(expected)
        self.seen = seen
        self.store = store
        self.settings = settings
        self._admin = admin
        self._probe = probe
        self.sink: AuditSink = sink or NullSink()
        self.clock = clock
        self.sleep = sleep
        self.pool = Pool(store, settings.pool_secret, clock=clock)

    def close(self) -> None:
        close = getattr(self.sink, "close", None)
        if callable(close):
            close()

    # ----------------------------------------------------------------- names

    def secret_name(self, name: str) -> str:
        prefix = self.settings.prefix
        return name if name.startswith(prefix) else prefix + name

    def short_name(self, secret: str) -> str:
        return secret.removeprefix(self.settings.prefix)

    def managed(self) -> list[SecretState]:
        return [
            s
            for s in self.store.list_secrets(self.settings.prefix)
            if s.tags.get(TAG_KIND) == KIND_MANAGED and s.name != self.settings.pool_secret
        ]

    @property
    def where(self) -> str:
        """The store, as a person would name it ("Secrets Manager in eu-west-1")."""
        return str(getattr(self.store, "where", "") or self.store.kind)

    def inventory(self) -> tuple[list[SecretState], list[Missing]]:
        """The managed secrets in the store, and the expected ones it lacks (named in the
        configuration, or seen by an earlier run): a wrong region or account finds none."""
        found = self.managed()
        names = {s.name for s in found}
        if self.seen is not None and found:
            self.seen.remember(names, self.where, iso(self.clock()))
        missing: dict[str, Missing] = {}
        for name in self.expected:
            secret = self.secret_name(name)
            if secret not in names:
                missing[secret] = Missing(name, secret, "named in the configuration")
        seen = self.seen.seen() if self.seen is not None else {}
        for secret, entry in sorted(seen.items()):
            if secret not in names and secret not in missing:
                why = f"seen in {entry.get('where', '?')} at {entry.get('at', '?')}"
                missing[secret] = Missing(self.short_name(secret), secret, why)
        return found, list(missing.values())

    def empty_notice(self) -> str:
        return (
            f"no managed keys found in {self.where} under the prefix {self.settings.prefix}: "
            "nothing to do (check keys.aws_region and the AWS account if that is wrong)"
        )

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            raise UsageError(
                "this command needs the Anthropic Admin API",
                hint="set anthropic.admin_key_source (default env:ANTHROPIC_ADMIN_KEY)",
            )
        return self._admin

    def probe(self, key: str) -> ProbeResult:
        if self._probe is None:
            raise UsageError("no Anthropic API endpoint configured to test keys")
        return self._probe(key)

    def _record(self, step: str, secret: str, **fields: object) -> None:
        self.sink.record(EVENT, step=step, secret=secret, store=self.store.kind, **fields)

    def _step(self, run: _Run, step: str, secret: str, **fields: object) -> None:
        """A rotation step is done: listed in the run's result and written as an audit event,
        so the two can never disagree."""
        run.steps.append(step)
        self._record(step, secret, **fields)

    def _refuse_revoked(
        self, key_id: str, hint: str, *, doing: str, fix: str, doc: PoolDoc | None = None
    ) -> None:
        entry = (doc if doc is not None else self.pool.read()).revoked.get(key_id)
        if entry is None:
            return
        raise KeyRevoked(
            f"key {key_id} ({entry.hint or hint}) was revoked on {entry.at}; "
            f"claudesec will not {doing}",
            hint=fix,
        )

    def _keep_lease(self, run: _Run) -> None:
        """Renew the run's lease once a third of it has gone, and stop if it was taken.

        Renewing at every step would cost a compare-and-swap of the pool per step; a third
        leaves two thirds of the lease as margin for the slowest step that follows.
        """
        if not run.owner:
            return
        now = self.clock()
        margin = timedelta(seconds=self.settings.lease_s / 3)
        if run.renewed_at is not None and now - run.renewed_at < margin:
            return
        held = self.pool.acquire(run.name, run.owner, self.settings.lease_s)
        if held is not None:
            raise LeaseLost(
                f"lost the lock on {run.name} to another run (held until {held.expires_at})",
                hint="that run resumes the rotation; raise keys.lease_seconds if this recurs",
            )
        run.renewed_at = now

    @contextmanager
    def _leased(self, name: str, run_id: str | None) -> Iterator[tuple[str, str]]:
        """Hold the rotation lock on ``name`` for the block, which gets the secret's name and
        the lock's owner; another run holding it is an error."""
        secret = self.secret_name(name)
        run_id = run_id or str(uuid.uuid4())
        self.store.describe(secret)
        held = self.pool.acquire(secret, run_id, self.settings.lease_s)
        if held is not None:
            raise ExternalServiceError(
                f"another run is rotating {name} (lock held until {held.expires_at})",
                hint="wait for it, or for the lock to expire",
            )
        try:
            yield secret, run_id
        except BaseException:
            # The block's error is what the caller must see, not a failure to release.
            self._release_quietly(secret, run_id)
            raise
        self._release_quietly(secret, run_id)  # done; an unreleased lock just expires

    # ----------------------------------------------------------------- identify

    def identify(self, key: str, key_id: str | None = None) -> RemoteKey:
        """The Admin API's record of ``key``, matched by ``partial_key_hint``.

        Two keys can share a hint (3 + 4 visible characters). Keys claudesec already holds
        are ruled out, then archived/expired ones; if several remain, ``key_id`` must pick.
        """
        hint = redact(key)
        candidates = [k for k in self.admin.list_keys() if k.partial_key_hint == hint]
        if key_id is not None:
            chosen = [k for k in candidates if k.id == key_id]
            if not chosen:
                raise UsageError(
                    f"key id {key_id} does not have the hint {hint}",
                    hint="`claudesec keys remote` lists the organisation's keys",
                )
            return chosen[0]
        if len(candidates) > 1:
            known = self._known_key_ids()
            candidates = [k for k in candidates if k.id not in known] or candidates
        if len(candidates) > 1:
            usable = [k for k in candidates if k.status in ("active", "inactive")]
            candidates = usable or candidates
        if not candidates:
            raise UsageError(
                f"no API key with the hint {hint} in this organisation",
                hint="check that the key and the Admin API key belong to the same organisation",
            )
        if len(candidates) > 1:
            ids = ", ".join(k.id for k in candidates)
            raise UsageError(
                f"{len(candidates)} keys share the hint {hint}: {ids}",
                hint="pass --key-id with the right one (the Console shows key ids)",
            )
        return candidates[0]

    def _known_key_ids(self) -> set[str]:
        known = {s.key_id for s in self.pool.read().spares}
        for state in self.managed():
            for version_id in state.versions:
                try:
                    value = self.store.read(state.name, version_id=version_id)
                    known.add(ManagedKey.from_json(value.text, secret=state.name).key_id)
                except ClaudesecError:
                    continue
        return known

    # ----------------------------------------------------------------- add, pool

    def add(self, name: str, key: str, *, key_id: str | None = None) -> ManagedKey:
        """Start managing ``key`` (the one consumers use today) as ``name``."""
        secret = self.secret_name(name)
        remote = self.identify(key, key_id)
        self._refuse_revoked(
            remote.id,
            redact(key),
            doing="manage it again",
            fix="manage a new key made in the Console",
        )
        if remote.status != "active":
            raise UsageError(
                f"key {remote.id} ({redact(key)}) is {remote.status}, not active",
                hint="add the key consumers use now; spares go to `keys pool add`",
            )
        existing = self._existing(secret)
        if existing is not None and existing.key_id == remote.id:
            return existing  # a retry whose first reply was lost: already managed, same key
        token = str(uuid.uuid4())
        managed = ManagedKey(
            key_id=remote.id,
            key=key,
            name=remote.name or self.short_name(secret),
            workspace=remote.workspace_id,
            created_at=iso(self.clock()),
        )
        self.store.create(
            secret,
            managed.to_json(),
            tags={
                TAG_KIND: KIND_MANAGED,
                TAG_ROTATED_VERSION: token,
                TAG_ROTATED_AT: managed.created_at,
            },
            token=token,
        )
        self._record("add", secret, key_id=remote.id, key_hint=managed.hint, outcome="ok")
        if self.seen is not None:
            self.seen.remember([secret], self.where, managed.created_at)
        return managed

    def _existing(self, secret: str) -> ManagedKey | None:
        """The current key of ``secret`` if it exists, else None."""
        from claudesec.stores.interface import SecretNotFound

        try:
            state = self.store.describe(secret)
        except SecretNotFound:
            return None
        current_v = state.version_with(CURRENT)
        return self._read(secret, current_v) if current_v is not None else None

    def pool_add(
        self,
        key: str,
        *,
        key_id: str | None = None,
        force: bool = False,
        other_use: Callable[[str], str | None] | None = None,
    ) -> tuple[Spare, bool]:
        """Load a spare made in the Console and deactivate it at once.

        Stored first, deactivated second: a crash in between leaves an active spare that a
        rerun (same key) deactivates, never a key nobody holds. Returns (spare, newly added).

        Deactivating a key a client uses breaks that client, so a key that is in service
        is refused unless ``force``: a version of a managed secret, a key in its overlap
        window, one the Admin API's usage report shows used within
        :data:`RECENT_USE`, or one ``other_use`` (the audit log) knows about.
        """
        remote = self.identify(key, key_id)
        self._refuse_revoked(
            remote.id,
            redact(key),
            doing="use it as a spare",
            fix="load a new key made in the Console",
        )
        if remote.status in ("archived", "expired"):
            raise UsageError(f"key {remote.id} is {remote.status}; it cannot be a spare")
        already = any(s.key_id == remote.id for s in self.pool.read().spares)
        if not already and not force:
            why = self._in_service(remote.id) or (other_use(remote.id) if other_use else None)
            if why is not None:
                raise UsageError(
                    f"key {remote.id} ({redact(key)}) is in use: {why}; claudesec will not "
                    "deactivate it as a spare",
                    hint="load a new key made in the Console (or pass --force if nothing uses it)",
                )
        spare = Spare(
            key_id=remote.id,
            key=key,
            hint=redact(key),
            workspace=remote.workspace_id,
            added_at=iso(self.clock()),
        )
        added = self.pool.add(spare)
        existing = next(s for s in self.pool.read().spares if s.key_id == remote.id)
        if existing.claim is None and remote.status != "inactive":
            self.admin.set_status(remote.id, "inactive")
        self._record(
            "pool_add",
            self.settings.pool_secret,
            key_id=remote.id,
            key_hint=spare.hint,
            outcome="ok" if added else "already_present",
        )
        return existing, added

    def in_service(self, key_id: str) -> str | None:
        """Why ``key_id`` must not be deactivated now (a managed secret's version, an overlap
        window, recent calls in the usage report), or None: the check spares and
        ``federation migrate --retire`` share."""
        return self._in_service(key_id)

    def _in_service(self, key_id: str) -> str | None:
        """Why ``key_id`` is in service (so not a spare), or None."""
        for state in self.managed():
            for version_id, stages in state.versions.items():
                labels = [s for s in (CURRENT, PENDING, PREVIOUS) if s in stages]
                if not labels:
                    continue
                try:
                    held = self._read(state.name, version_id)
                except ClaudesecError:
                    continue
                if held.key_id == key_id:
                    return f"it is {labels[0]} of {state.name}"
        for entry in self.pool.read().retiring:
            if entry.key_id == key_id:
                return (
                    f"it left {entry.secret} and is in its overlap window until {entry.not_before}"
                )
        since = self.clock() - RECENT_USE
        for row in self.admin.usage_report(starting_at=since, group_by=["api_key_id"]):
            if row.api_key_id == key_id and (row.input_tokens or row.output_tokens):
                return f"the Admin API's usage report shows calls with it since {iso(since)}"
        return None

    # ----------------------------------------------------------------- rotate

    def rotate(
        self,
        names: Sequence[str] | None = None,
        *,
        force: bool = False,
        dry_run: bool = False,
        run_id: str | None = None,
    ) -> RotationReport:
        """Rotate the named keys (or every managed key when ``names`` is None)."""
        run_id = run_id or str(uuid.uuid4())
        results: list[KeyResult] = []
        notices: list[str] = []
        if names is None:
            found, missing = self.inventory()
            secrets = [s.name for s in found]
            if not found:
                notices.append(self.empty_notice())
            results.extend(
                KeyResult(
                    name=m.name,
                    outcome="failed",
                    message=m.message(self.where),
                    exit_code=int(ExitCode.USAGE),
                )
                for m in missing
            )
        else:
            secrets = [self.secret_name(n) for n in names]
        for secret in secrets:
            try:
                if dry_run:
                    results.append(self._plan(secret, force))
                else:
                    results.append(self._rotate_leased(secret, force, run_id))
            except ClaudesecError as exc:
                results.append(
                    KeyResult(
                        name=self.short_name(secret),
                        outcome="failed",
                        message=exc.user_message(),
                        exit_code=int(exc.exit_code),
                    )
                )
        try:
            pool_size: int | None = len(self.pool.read().unclaimed())
        except ClaudesecError:
            pool_size = None
        return RotationReport(
            results=tuple(results), pool_size=pool_size, dry_run=dry_run, notices=tuple(notices)
        )

    def _rotate_leased(self, secret: str, force: bool, run_id: str) -> KeyResult:
        self.store.describe(secret)
        held = self.pool.acquire(secret, run_id, self.settings.lease_s)
        if held is not None:
            return KeyResult(
                name=self.short_name(secret),
                outcome="locked",
                message=f"another run is rotating it (lock held until {held.expires_at})",
            )
        run = _Run(secret, owner=run_id, renewed_at=self.clock())
        try:
            result = self._rotate_locked(run, force)
        except ClaudesecError as exc:
            # The error that stopped the run is the report; recording it must not replace it
            # (the audit store or AWS may be what failed).
            self._record_quietly("failed", secret, outcome="failed", error=exc.user_message())
            result = KeyResult(
                name=self.short_name(secret),
                outcome="failed",
                message=exc.user_message(),
                steps=tuple(run.steps),
                retired=tuple(run.retired),
                exit_code=int(exc.exit_code),
            )
        except BaseException:
            self._release_quietly(secret, run_id)
            raise
        note = self._release_quietly(secret, run_id)
        if note:
            result = replace(result, message="; ".join(m for m in (result.message, note) if m))
        return result

    def _release_quietly(self, secret: str, owner: str) -> str:
        """Release the lease; if that fails too (the outage that stopped the run), say so
        instead of raising over the run's own report. The lease then simply expires."""
        try:
            self.pool.release_lease(secret, owner)
        except ClaudesecError:
            until = iso(self.clock() + timedelta(seconds=self.settings.lease_s))
            return f"the lock on it could not be released; it expires by {until}"
        return ""

    def _record_quietly(self, step: str, secret: str, **fields: object) -> None:
        try:
            self._record(step, secret, **fields)
        except ClaudesecError:
            return

    def _rotate_locked(self, run: _Run, force: bool) -> KeyResult:
        """One secret, under its lease: book-keeping first, then the four rotation steps,
        each of which finds its own work already done when a previous run did it."""
        secret = run.name
        self._finish_revokes(run)
        state, current_v, pending_v = self._finish_interrupted_label_move(run)
        current = self._read(secret, current_v)
        self._settle(run, state, current)
        doc = self.pool.read()
        self._retire(run, current, doc)
        due_at = self._due_at(current)
        if pending_v is None:
            # A revoked key still in AWSCURRENT (revoke found no spare) is due now.
            revoked_current = current.key_id in doc.revoked
            if not force and not revoked_current and due_at > self.clock():
                return self._not_due(run, current, due_at)
            try:
                token, pending = self._create_secret(run, state, current)
            except PoolEmpty as exc:
                return self._pool_empty(run, current, due_at, exc, revoked=revoked_current)
        else:
            token, pending = pending_v, self._resume_pending(run, pending_v)
        self._set_secret(run, pending, doc)
        self._test_secret(run, pending)
        self._finish_secret(run, token, current_v, current, pending)
        return KeyResult(
            name=self.short_name(secret),
            outcome="rotated",
            rotated=True,
            key_id=pending.key_id,
            key_hint=pending.hint,
            previous_key_id=current.key_id,
            steps=tuple(run.steps),
            retired=tuple(run.retired),
            due_at=iso(self._due_at(pending)),
            message="; ".join(run.notes),
        )

    def _finish_revokes(self, run: _Run) -> None:
        """Finish, at once, any revoke of this secret that a dead or failed run left undone
        (or that someone undid in the Console): the overlap window never applies to it."""
        for check in self.enforce_revocations(run.name):
            run.steps.append("revoke")
            run.retired.append(check.key_id)
            run.notes.append(check.describe())

    def _finish_interrupted_label_move(self, run: _Run) -> tuple[SecretState, str, str | None]:
        """The secret's state, its ``AWSCURRENT`` and ``AWSPENDING`` versions; a run that died
        between the two label moves of finishSecret is finished here."""
        secret = run.name
        state = self.store.describe(secret)
        current_v = _current_version(state, secret)
        pending_v = state.version_with(PENDING)
        if pending_v == current_v:
            self.store.move_stage(secret, PENDING, to_version=None, from_version=pending_v)
            self._step(run, "finish_secret", secret, version=current_v, outcome="resumed")
            started = self._read(secret, current_v).created_at
            run.notes.append(f"finished the rotation an earlier run started at {started}")
            return self.store.describe(secret), current_v, None
        return state, current_v, pending_v

    def _not_due(self, run: _Run, current: ManagedKey, due_at: datetime) -> KeyResult:
        finished_now = "finish_secret" in run.steps
        return KeyResult(
            name=self.short_name(run.name),
            outcome="rotated" if finished_now else "not_due",
            rotated=finished_now,
            key_id=current.key_id,
            key_hint=current.hint,
            steps=tuple(run.steps),
            retired=tuple(run.retired),
            due_at=iso(due_at),
            message="; ".join(run.notes),
        )

    def _pool_empty(
        self, run: _Run, current: ManagedKey, due_at: datetime, exc: PoolEmpty, *, revoked: bool
    ) -> KeyResult:
        overdue = due_at <= self.clock() or revoked
        self._record("create_secret", run.name, outcome="pool_empty", overdue=overdue)
        return KeyResult(
            name=self.short_name(run.name),
            outcome="pool_empty",
            message="; ".join([*run.notes, exc.message + (" (key is overdue)" if overdue else "")]),
            key_id=current.key_id,
            key_hint=current.hint,
            steps=tuple(run.steps),
            retired=tuple(run.retired),
            due_at=iso(due_at),
            exit_code=int(ExitCode.FOUND),
        )

    def _create_secret(
        self, run: _Run, state: SecretState, current: ManagedKey
    ) -> tuple[str, ManagedKey]:
        """Step 1: claim a spare and write it as ``AWSPENDING`` under the claim's token."""
        secret = run.name
        self._keep_lease(run)
        token = str(uuid.uuid4())
        in_use = frozenset(self._key_ids(secret, state))
        spare = self.pool.claim(secret, token, in_use=in_use)
        pending = ManagedKey(
            key_id=spare.key_id,
            key=spare.key,
            name=current.name,
            workspace=spare.workspace,
            created_at=iso(self.clock()),
        )
        self.store.put_version(secret, pending.to_json(), token=token, stages=[PENDING])
        self._step(
            run,
            "create_secret",
            secret,
            key_id=pending.key_id,
            key_hint=pending.hint,
            version=token,
            outcome="ok",
        )
        return token, pending

    def _resume_pending(self, run: _Run, pending_v: str) -> ManagedKey:
        """Step 1 already done by an earlier run: resume its ``AWSPENDING`` version."""
        pending = self._read(run.name, pending_v)
        self._step(run, "resume", run.name, key_id=pending.key_id, version=pending_v, outcome="ok")
        run.notes.append(f"resumed the rotation an earlier run started at {pending.created_at}")
        return pending

    def _set_secret(self, run: _Run, pending: ManagedKey, doc: PoolDoc) -> None:
        """Step 2: activate the spare (never a revoked one)."""
        self._keep_lease(run)
        self._refuse_revoked(
            pending.key_id,
            pending.hint,
            doing="activate it",
            fix=f"abandon the pending rotation: {abandon_command(self.short_name(run.name))}",
            doc=doc,
        )
        self._activate_pending(run.name, pending)
        self._step(run, "set_secret", run.name, key_id=pending.key_id, outcome="ok")

    def _test_secret(self, run: _Run, pending: ManagedKey) -> None:
        """Step 3: an authenticated call with the new key must succeed."""
        self._test(run, pending)
        self._step(run, "test_secret", run.name, key_id=pending.key_id, outcome="ok")

    def _finish_secret(
        self, run: _Run, token: str, current_v: str, current: ManagedKey, pending: ManagedKey
    ) -> None:
        """Step 4: move ``AWSCURRENT`` to the new version, drop ``AWSPENDING``, settle."""
        secret = run.name
        self._keep_lease(run)
        self.store.move_stage(secret, CURRENT, to_version=token, from_version=current_v)
        self.store.move_stage(secret, PENDING, to_version=None, from_version=token)
        self._step(
            run,
            "finish_secret",
            secret,
            key_id=pending.key_id,
            previous_key_id=current.key_id,
            version=token,
            outcome="ok",
        )
        self._settle(run, self.store.describe(secret), pending)

    def _activate_pending(self, secret: str, pending: ManagedKey) -> None:
        """setSecret; an archived or deleted spare is reported as stuck, not as retryable."""
        from claudesec.anthropic_admin import AnthropicError

        try:
            self.admin.set_status(pending.key_id, "active")
            return
        except AnthropicError as exc:
            # 400 is also what a malformed request gets: only the key's own record can say
            # that it is archived for good. 404: deleted, or not in this organisation.
            if exc.status not in (400, 404):
                raise
            failure = exc
        why, _ = self._dead_reason(pending.key_id)
        if why is None:
            raise failure
        self._record(
            "set_secret", secret, key_id=pending.key_id, outcome="failed", why=why, stuck=True
        )
        raise PendingStuck(
            f"the pending key {pending.key_id} ({pending.hint}) {why}; it can never be "
            "activated, so this rotation cannot finish (AWSCURRENT is unchanged)",
            hint=f"run {abandon_command(self.short_name(secret))}",
        )

    def _dead_reason(self, key_id: str) -> tuple[str | None, RemoteKey | None]:
        """Why the Admin API says ``key_id`` can never be used again (None if it can), and
        the key's record when there is one."""
        from claudesec.anthropic_admin import AnthropicError

        try:
            remote = self.admin.retrieve_key(key_id)
        except AnthropicError as exc:
            if exc.status == 404:
                return "is not in the organisation any more (deleted in the Console?)", None
            raise
        if remote.status in ("archived", "expired"):
            return f"is {remote.status}", remote
        return None, remote

    def _test(self, run: _Run, pending: ManagedKey, *, rotation: bool = True) -> None:
        secret = run.name
        result = None
        for attempt in range(self.settings.test_attempts):
            if attempt:
                self.sleep(self.settings.test_delay_s)
            self._keep_lease(run)
            result = self.probe(pending.key)
            if result.outcome == "valid":
                return
        assert result is not None
        self._record(
            "test_secret", secret, key_id=pending.key_id, outcome="failed", status=result.status
        )
        name = self.short_name(secret)
        if result.outcome == "rejected" and not rotation:
            raise RotationFailed(
                f"key {pending.key_id} ({pending.hint}) was refused by Anthropic "
                f"({result.status}) after activation; AWSCURRENT is unchanged",
                hint="rerun to retry",
            )
        if result.outcome == "rejected":
            refusals = self.pool.reject(secret, pending.key_id)
            if refusals >= self.settings.stuck_after:
                raise PendingStuck(
                    f"Anthropic refused the new key {pending.key_id} ({pending.hint}) "
                    f"({result.status}) after activation in {refusals} runs; it will not "
                    "start working (AWSCURRENT is unchanged)",
                    hint=f"run {abandon_command(name)}",
                )
            raise RotationFailed(
                f"the new key {pending.key_id} ({pending.hint}) was refused by Anthropic "
                f"({result.status}) after activation; AWSCURRENT is unchanged",
                hint=f"rerun to retry; if it persists run {abandon_command(name)}",
            )
        raise RotationFailed(
            f"could not test the new key {pending.key_id}: {result.detail or result.status}; "
            "AWSCURRENT is unchanged",
            hint="rerun to resume",
        )

    # ----------------------------------------------------------------- book-keeping

    def _settle(self, run: _Run, state: SecretState, current: ManagedKey) -> None:
        """After ``AWSCURRENT`` moved: schedule the old key's retirement, drop the spare."""
        current_v = state.version_with(CURRENT)
        if current_v is None or state.tags.get(TAG_ROTATED_VERSION) == current_v:
            return
        now = self.clock()
        old: Retiring | None = None
        previous_v = state.version_with(PREVIOUS)
        if previous_v is not None and previous_v != current_v:
            previous = self._read(state.name, previous_v)
            old = Retiring(
                secret=state.name,
                key_id=previous.key_id,
                key=previous.key,
                not_before=iso(now + self.settings.overlap),
            )
        self.pool.settle(state.name, current.key_id, old)
        self.store.set_tags(state.name, {TAG_ROTATED_VERSION: current_v, TAG_ROTATED_AT: iso(now)})
        self._step(
            run,
            "settle",
            state.name,
            key_id=current.key_id,
            retire_key_id=old.key_id if old else None,
            retire_after=old.not_before if old else None,
            outcome="ok",
        )

    def _retire(self, run: _Run, current: ManagedKey, doc: PoolDoc) -> None:
        """Deactivate keys of this secret whose overlap window has passed, then prove it."""
        now = self.clock()
        for entry in doc.retiring:
            if entry.secret != run.name:
                continue
            moment = parse_iso(entry.not_before)
            if entry.key_id == current.key_id:
                self.pool.retired(entry.key_id)
                continue
            if moment is not None and moment > now:
                continue
            self._keep_lease(run)
            self.deactivate(run.name, entry.key_id, entry.key, step="retire")
            self.pool.retired(entry.key_id)
            run.retired.append(entry.key_id)

    def deactivate(self, secret: str, key_id: str, key: str, *, step: str) -> None:
        """Deactivate ``key_id`` and prove ``key`` now answers 401."""
        from claudesec.anthropic_admin import AnthropicError

        try:
            self.admin.set_status(key_id, "inactive")
        except AnthropicError as exc:
            # An archived or expired key refuses status changes (400): it is already dead,
            # which the probe below confirms.
            if exc.status != 400:
                raise
        result = self.probe(key)
        if result.outcome == "valid":
            self._record(step, secret, key_id=key_id, outcome="failed", verified=False)
            raise RotationFailed(
                f"key {key_id} ({redact(key)}) still works after deactivation",
                hint="deactivate it in the Console now",
            )
        if result.outcome != "rejected":
            raise RotationFailed(
                f"could not verify that key {key_id} is refused: {result.detail}",
                hint="rerun to verify",
            )
        self._record(step, secret, key_id=key_id, outcome="ok", verified=True)

    # ----------------------------------------------------------------- helpers

    def _read(self, secret: str, version_id: str) -> ManagedKey:
        value = self.store.read(secret, version_id=version_id)
        return ManagedKey.from_json(value.text, secret=secret)

    def _key_ids(self, secret: str, state: SecretState) -> Iterable[str]:
        for stage in (CURRENT, PREVIOUS):
            version = state.version_with(stage)
            if version is not None:
                yield self._read(secret, version).key_id

    def _due_at(self, key: ManagedKey) -> datetime:
        created = parse_iso(key.created_at) or self.clock()
        return created + self.settings.max_age

    def _plan(self, secret: str, force: bool) -> KeyResult:
        state = self.store.describe(secret)
        current_v = _current_version(state, secret)
        pending_v = state.version_with(PENDING)
        current = self._read(secret, current_v)
        due_at = self._due_at(current)
        outcome: Outcome = "would_rotate"
        message = ""
        pool = self.pool.read()
        revoked = current.key_id in pool.revoked
        if pending_v is not None and pending_v != current_v:
            outcome, message = "would_resume", "a rotation is pending"
        elif not force and not revoked and due_at > self.clock():
            outcome = "not_due"
        else:
            if revoked:
                message = "the current key was revoked"
            if not pool.unclaimed() and not pool.claimed_by(secret):
                outcome, message = "pool_empty", "no spare key left in the pool"
        return KeyResult(
            name=self.short_name(secret),
            outcome=outcome,
            message=message,
            key_id=current.key_id,
            key_hint=current.hint,
            due_at=iso(due_at),
            exit_code=int(ExitCode.FOUND) if outcome == "pool_empty" else 0,
        )

    # ----------------------------------------------------------------- rollback, revoke

    def rollback(
        self, name: str, *, to_version: str | None = None, run_id: str | None = None
    ) -> KeyResult:
        """Put ``AWSCURRENT`` back on ``AWSPREVIOUS`` (or on ``to_version``, which must be
        one of the two), reactivating the old key if needed.

        Idempotent: where it is going is tagged on the secret before ``AWSCURRENT`` moves,
        so a retry (a lost reply, a second run) that finds ``AWSCURRENT`` already there
        reports success instead of rolling the rollback back.
        """
        with self._leased(name, run_id) as (secret, owner):
            run = _Run(secret, owner=owner, renewed_at=self.clock())
            state = self.store.describe(secret)
            current_v = _current_version(state, secret)
            if state.version_with(PENDING) not in (None, current_v):
                raise UsageError(
                    f"{name} has a rotation in progress",
                    hint="finish it with `keys rotate` first",
                )
            target_v = self._rollback_target(name, state, current_v, to_version)
            current = self._read(secret, current_v)
            if target_v == current_v:
                return self._already_rolled_back(run, state, current)
            return self._roll_back(run, current_v, current, target_v)

    def _rollback_target(
        self, name: str, state: SecretState, current_v: str, to_version: str | None
    ) -> str:
        previous_v = state.version_with(PREVIOUS)
        if to_version is not None:
            if to_version not in (current_v, previous_v):
                raise UsageError(
                    f"version {to_version} is neither AWSCURRENT nor AWSPREVIOUS of {name}",
                    hint=f"`claudesec keys status` shows the versions of {name}",
                )
            return to_version
        tags = state.tags
        if tags.get(TAG_ROLLBACK_TO) == current_v and tags.get(TAG_ROLLBACK_FROM) in (
            previous_v,
            None,
        ):
            return current_v  # a retry of the rollback that put AWSCURRENT here
        if previous_v is None or previous_v == current_v:
            raise CheckFailed(f"{name} has no previous version to roll back to")
        return previous_v

    def _already_rolled_back(self, run: _Run, state: SecretState, current: ManagedKey) -> KeyResult:
        current_v = _current_version(state, run.name)
        self._settle(run, state, current)  # the book-keeping a lost reply may have cut off
        when = (
            state.tags.get(TAG_ROLLBACK_AT)
            if state.tags.get(TAG_ROLLBACK_TO) == current_v
            else None
        )
        name = self.short_name(run.name)
        return KeyResult(
            name=name,
            outcome="already_done",
            key_id=current.key_id,
            key_hint=current.hint,
            steps=tuple(run.steps),
            message=f"AWSCURRENT of {name} is already on version {current_v} (key "
            f"{current.key_id} ({current.hint}))"
            + (f", rolled back there at {when}" if when else "")
            + "; nothing moved",
        )

    def _roll_back(
        self, run: _Run, current_v: str, current: ManagedKey, target_v: str
    ) -> KeyResult:
        secret = run.name
        name = self.short_name(secret)
        target = self._read(secret, target_v)
        # Checked before anything else: a revoked key is presumed compromised, and its
        # status at Anthropic (inactive) is exactly what a rollback would "fix".
        self._refuse_revoked(
            target.key_id,
            target.hint,
            doing="roll back to it",
            fix=f"rotate to a spare instead: `claudesec keys rotate {name} --force`",
        )
        remote = self.admin.retrieve_key(target.key_id)
        if remote.status in ("archived", "expired"):
            raise CheckFailed(
                f"the previous key {target.key_id} is {remote.status}; it cannot come back",
                hint="rotate to a spare instead",
            )
        if remote.status != "active":
            self.admin.set_status(target.key_id, "active")
        self._test(run, target, rotation=False)
        self._keep_lease(run)
        self.store.set_tags(
            secret,
            {
                TAG_ROLLBACK_TO: target_v,
                TAG_ROLLBACK_FROM: current_v,
                TAG_ROLLBACK_AT: iso(self.clock()),
            },
        )
        self.store.move_stage(secret, CURRENT, to_version=target_v, from_version=current_v)
        self._step(
            run,
            "rollback",
            secret,
            key_id=target.key_id,
            previous_key_id=current.key_id,
            version=target_v,
            outcome="ok",
        )
        self._settle(run, self.store.describe(secret), target)
        return KeyResult(
            name=name,
            outcome="rolled_back",
            rotated=True,
            key_id=target.key_id,
            key_hint=target.hint,
            previous_key_id=current.key_id,
            steps=tuple(run.steps),
            message=f"rolled back {name} to version {target_v} (key {target.key_id} "
            f"({target.hint})); {current.key_id} ({current.hint}) retires after the overlap "
            "window",
        )

    def revoke(
        self, name: str, *, key_id: str | None = None, run_id: str | None = None
    ) -> KeyResult:
        """Emergency: deactivate the current key now (proved by a 401), then rotate to a spare.

        The key is recorded as revoked first, with the key itself, so that if this run dies
        before the deactivation is proved, whichever run comes next (this command again,
        ``keys rotate``, ``keys status``) finishes it. A rerun finishes what is left and never
        picks a new victim: when the current key replaced a key revoked less than
        :data:`RETRY_WINDOW` ago, the rerun is a retry and reports the earlier revoke;
        later, the current key is revoked only when ``key_id`` names it.
        """
        secret = self.secret_name(name)
        state = self.store.describe(secret)
        current = self._read(secret, _current_version(state, secret))
        doc = self.pool.read()
        target, earlier = self._revoke_target(secret, state, current, doc, key_id)
        if target is not None:
            earlier = doc.revoked.get(target.key_id, earlier)
            self.pool.mark_revoked(target.key_id, target.hint, secret, key=target.key)
            self._record("revoke_marked", secret, key_id=target.key_id, outcome="ok")
        checks = self.enforce_revocations(secret)
        doc = self.pool.read()
        revoked = [
            e for e in doc.revoked.values() if e.secret == secret and e.key_id != current.key_id
        ]
        if current.key_id not in doc.revoked:
            # The current key is not the revoked one (a retry after the rotation, or
            # ``key_id`` named AWSPREVIOUS): nothing to rotate.
            gone = earlier or (revoked[-1] if revoked else None)
            note = f"{current.key_id} ({current.hint}) stays current; it was NOT revoked"
            if gone is not None:
                note = (
                    f"{gone.key_id} ({gone.hint}) was revoked at {gone.at}; "
                    + note
                    + f" (if it leaked too: `claudesec keys revoke {name} --key-id "
                    f"{current.key_id}`)"
                )
            return KeyResult(
                name=self.short_name(secret),
                # A fresh revoke of AWSPREVIOUS did something; a retry found it done.
                outcome="revoked" if target is not None else "already_done",
                message=note,
                key_id=current.key_id,
                key_hint=current.hint,
                previous_key_id=gone.key_id if gone else "",
                steps=("revoke",) if checks else (),
                retired=tuple(c.key_id for c in checks),
            )
        report = self.rotate([name], force=True, run_id=run_id)
        result = report.results[0]
        when = ""
        if earlier is not None and earlier.key_id == current.key_id:
            when = f" (recorded by an earlier run at {earlier.at})"
        note = f"revoked {current.key_id} ({current.hint}){when}; "
        if result.rotated:
            note += (
                f"{name} now holds {result.key_id} ({result.key_hint}): consumers must re-read "
                f"{secret} (AWSCURRENT) now"
            )
        else:
            note += f"NO replacement key: {result.message}"
        return KeyResult(
            name=result.name,
            outcome=result.outcome,
            message=note,
            rotated=result.rotated,
            key_id=result.key_id,
            key_hint=result.key_hint,
            previous_key_id=current.key_id,
            steps=("revoke", *result.steps),
            retired=tuple(dict.fromkeys((current.key_id, *result.retired))),
            due_at=result.due_at,
            exit_code=result.exit_code,
        )

    def _revoke_target(
        self,
        secret: str,
        state: SecretState,
        current: ManagedKey,
        doc: PoolDoc,
        key_id: str | None,
    ) -> tuple[ManagedKey | None, Revoked | None]:
        """The key this revoke must mark (None: only finish what is recorded), and the
        earlier revoke this run is a retry of, if any."""
        name = self.short_name(secret)
        previous_v = state.version_with(PREVIOUS)
        previous = self._read(secret, previous_v) if previous_v is not None else None
        if key_id is not None:
            for key in (current, previous):
                if key is not None and key.key_id == key_id:
                    return key, None
            entry = doc.revoked.get(key_id)
            if entry is not None and entry.secret == secret:
                return None, entry
            raise UsageError(
                f"key {key_id} is neither AWSCURRENT nor AWSPREVIOUS of {name}",
                hint=f"`claudesec keys status` shows the keys of {name}",
            )
        mine = [e for e in doc.revoked.values() if e.secret == secret]
        unfinished = [e for e in mine if not e.finished]
        if unfinished:
            return None, unfinished[0]
        if current.key_id in doc.revoked:
            return None, doc.revoked[current.key_id]
        replaced = doc.revoked.get(previous.key_id) if previous is not None else None
        if replaced is None or replaced.secret != secret:
            return current, None
        revoked_at = parse_iso(replaced.at)
        if revoked_at is not None and self.clock() - revoked_at <= RETRY_WINDOW:
            return None, replaced
        raise UsageError(
            f"{name}: the current key {current.key_id} ({current.hint}) replaced "
            f"{replaced.key_id}, revoked at {replaced.at}; claudesec will not guess which "
            "key you mean",
            hint=f"to revoke the current key run `claudesec keys revoke {name} --key-id "
            f"{current.key_id}`",
        )

    def enforce_revocations(self, secret: str | None = None) -> list[RevokeCheck]:
        """Make every key recorded as revoked (of ``secret``, or all) refuse calls, now.

        The record is not trusted: a revoke not yet proved (its run died, or the Admin API
        failed) is deactivated and probed; a proved one that the Admin API shows active
        again (re-enabled in the Console) is deactivated again. Returns what was found
        undone; raises when a revoked key cannot be made to refuse calls.
        """
        doc = self.pool.read()
        entries = [e for e in doc.revoked.values() if secret is None or e.secret == secret]
        if not entries:
            return []
        remote = {k.id: k for k in self.admin.list_keys()}
        found: list[RevokeCheck] = []
        for entry in entries:
            key = remote.get(entry.key_id)
            if key is None or key.status in ("archived", "expired"):
                if not entry.finished:  # deleted or archived: it can never answer again
                    self.pool.revoke_verified(entry.key_id)
                continue
            if entry.finished and key.status != "active":
                continue
            check = RevokeCheck(
                key_id=entry.key_id,
                hint=entry.hint,
                secret=entry.secret,
                revoked_at=entry.at,
                found="re-enabled" if entry.finished else "unfinished",
                was_active=key.status == "active",
            )
            self._kill_revoked(entry)
            self.pool.revoke_verified(entry.key_id)
            self._record(
                "revoke_finished",
                entry.secret,
                key_id=entry.key_id,
                found=check.found,
                was_active=check.was_active,
                revoked_at=entry.at,
                outcome="ok",
            )
            found.append(check)
        return found

    def _kill_revoked(self, entry: Revoked) -> None:
        """Deactivate a revoked key and prove it refuses calls (by its own probe when the key
        is known, else by the Admin API's record of it)."""
        key = entry.key or self._find_key(entry.secret, entry.key_id)
        if key:
            self.deactivate(entry.secret, entry.key_id, key, step="revoke")
            return
        self.admin.set_status(entry.key_id, "inactive")
        if self.admin.retrieve_key(entry.key_id).status == "active":
            raise RotationFailed(
                f"revoked key {entry.key_id} ({entry.hint}) is still active after deactivation",
                hint="deactivate it in the Console now",
            )
        self._record("revoke", entry.secret, key_id=entry.key_id, outcome="ok", verified=False)

    def _find_key(self, secret: str, key_id: str) -> str:
        """The key with id ``key_id`` among the versions of ``secret``, or ""."""
        from claudesec.stores.interface import SecretNotFound

        try:
            state = self.store.describe(secret)
        except SecretNotFound:
            return ""
        for version_id in state.versions:
            try:
                key = self._read(secret, version_id)
            except ClaudesecError:
                continue
            if key.key_id == key_id:
                return key.key
        return ""

    # ----------------------------------------------------------------- abandon

    def abandon_pending(self, name: str, *, run_id: str | None = None) -> AbandonResult:
        """Give up the pending rotation of ``name``; ``AWSCURRENT`` is not touched.

        Every key the rotation holds (the ``AWSPENDING`` version, the spare claimed for it)
        is judged: one Anthropic will never accept (revoked, archived, deleted, refused
        although active) leaves the pool; a healthy one is deactivated and goes back.

        Order matters for a crash: deactivate, drop ``AWSPENDING``, then release the claim.
        A claim outliving ``AWSPENDING`` is harmless (a rerun, or the next rotation, finds
        it); a spare released while still ``AWSPENDING`` could be claimed by another secret
        and then resumed here as well.
        """
        with self._leased(name, run_id) as (secret, owner):
            return self._abandon_locked(_Run(secret, owner=owner, renewed_at=self.clock()))

    def _abandon_locked(self, run: _Run) -> AbandonResult:
        secret = run.name
        name = self.short_name(secret)
        state = self.store.describe(secret)
        current_v = _current_version(state, secret)
        pending_v = state.version_with(PENDING)
        if pending_v == current_v:
            raise UsageError(
                f"the pending rotation of {name} already finished (AWSPENDING is on AWSCURRENT)",
                hint=f"`claudesec keys rotate {name}` completes its book-keeping",
            )
        current = self._read(secret, current_v)
        live = set(self._key_ids(secret, state))
        doc = self.pool.read()
        held: dict[str, Spare] = {}
        if pending_v is not None:
            pending = self._read(secret, pending_v)
            held[pending.key_id] = Spare(
                key_id=pending.key_id,
                key=pending.key,
                hint=pending.hint,
                workspace=pending.workspace,
                added_at=pending.created_at,
            )
        for spare in doc.claimed_by(secret):
            held[spare.key_id] = spare  # the pool's record keeps its original added_at
        verdicts: list[Abandoned] = []
        returned: list[Spare] = []
        for key_id, spare in held.items():
            if key_id in live:
                verdicts.append(Abandoned(key_id, spare.hint, "kept", "it is in AWSCURRENT"))
                continue
            self._keep_lease(run)
            why = self._unusable(spare, doc)
            if why is None:
                self.admin.set_status(key_id, "inactive")
                returned.append(spare)
                verdicts.append(Abandoned(key_id, spare.hint, "returned", "healthy; deactivated"))
            else:
                self._deactivate_quietly(key_id)
                verdicts.append(Abandoned(key_id, spare.hint, "discarded", why))
        if pending_v is not None:
            self._keep_lease(run)
            self.store.move_stage(secret, PENDING, to_version=None, from_version=pending_v)
        discarded = {v.key_id for v in verdicts if v.disposition == "discarded"}
        self.pool.abandon(secret, returned, discarded)
        for verdict in verdicts:
            self._record(
                "abandon_pending",
                secret,
                key_id=verdict.key_id,
                key_hint=verdict.key_hint,
                disposition=verdict.disposition,
                why=verdict.reason,
                version=pending_v,
                current_key_id=current.key_id,
                outcome="ok",
            )
        if not verdicts:
            self._record("abandon_pending", secret, outcome="nothing_pending")
        return AbandonResult(
            name=name,
            current_key_id=current.key_id,
            pending_version=pending_v,
            keys=tuple(verdicts),
        )

    def _deactivate_quietly(self, key_id: str) -> None:
        """Deactivate a discarded key if Anthropic still lets us: once it leaves the pool
        nobody holds it, so an active one would be a live credential nobody watches."""
        from claudesec.anthropic_admin import AnthropicError

        try:
            self.admin.set_status(key_id, "inactive")
        except AnthropicError as exc:
            if exc.status not in (400, 404):  # archived or gone: already harmless
                raise

    def _unusable(self, spare: Spare, doc: PoolDoc) -> str | None:
        """Why ``spare`` must leave the pool, or None if it is healthy."""
        if spare.key_id in doc.revoked:
            return "it was revoked"
        why, remote = self._dead_reason(spare.key_id)
        if why is not None or remote is None:
            return f"it {why}"
        if remote.status == "active":
            result = self.probe(spare.key)
            if result.outcome == "rejected":
                return f"Anthropic refuses it ({result.status}) although it is active"
            if result.outcome != "valid":
                raise RotationFailed(
                    f"could not test the pending key {spare.key_id}: "
                    f"{result.detail or result.status}",
                    hint="rerun to resume; nothing was changed for this key",
                )
            return None
        refusals = spare.claim.rejections if spare.claim is not None else 0
        if refusals >= self.settings.stuck_after:
            return f"Anthropic refused it in {refusals} runs"
        return None


def _current_version(state: SecretState, secret: str) -> str:
    """The version ``AWSCURRENT`` is on; a managed secret without one cannot be worked on."""
    current_v = state.version_with(CURRENT)
    if current_v is None:
        raise RotationFailed(f"secret {secret} has no AWSCURRENT version")
    return current_v

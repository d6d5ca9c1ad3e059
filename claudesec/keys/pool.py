"""The pool secret: spares and rotation leases, changed only by compare-and-swap.

An update reads ``AWSCURRENT`` (its version id and document), computes the new document, puts
it as a new version under a private label, then moves ``AWSCURRENT`` to it *from the version
it read*. If another writer got there first, that move fails and the update starts over on
the fresh document. Update functions are idempotent (a claim names its secret and token, a
lease its owner), so an update whose reply was lost is simply found already applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from claudesec.errors import StoreError
from claudesec.keys.model import (
    KIND_POOL,
    TAG_KIND,
    Claim,
    Lease,
    PoolDoc,
    Retiring,
    Revoked,
    Spare,
    iso,
    utcnow,
)
from claudesec.stores.interface import (
    CURRENT,
    KeyStore,
    SecretExists,
    SecretNotFound,
    StageConflict,
)

T = TypeVar("T")
NEXT_LABEL = "CLAUDESEC_NEXT"
MAX_CAS_ATTEMPTS = 20

Clock = Callable[[], datetime]


class PoolEmpty(StoreError):
    """No unclaimed spare is left to rotate to."""


class Pool:
    """The spares and leases in the pool secret of one store."""

    def __init__(self, store: KeyStore, secret: str, *, clock: Clock = utcnow) -> None:
        self.store = store
        self.secret = secret
        self.clock = clock

    def read(self) -> PoolDoc:
        try:
            value = self.store.read(self.secret, stage=CURRENT)
        except SecretNotFound:
            return PoolDoc()
        return PoolDoc.from_json(value.text, secret=self.secret)

    def update(self, change: Callable[[PoolDoc], tuple[PoolDoc, T]]) -> T:
        """Apply ``change`` atomically; it may run more than once, so it must be pure."""
        for _ in range(MAX_CAS_ATTEMPTS):
            try:
                current = self.store.read(self.secret, stage=CURRENT)
            except SecretNotFound:
                new, result = change(PoolDoc())
                if new == PoolDoc():
                    return result
                try:
                    self.store.create(
                        self.secret,
                        new.to_json(),
                        tags={TAG_KIND: KIND_POOL},
                        token=str(uuid.uuid4()),
                    )
                except SecretExists:
                    continue
                return result
            doc = PoolDoc.from_json(current.text, secret=self.secret)
            new, result = change(doc)
            if new == doc:
                return result
            token = str(uuid.uuid4())
            self.store.put_version(self.secret, new.to_json(), token=token, stages=[NEXT_LABEL])
            try:
                self.store.move_stage(
                    self.secret, CURRENT, to_version=token, from_version=current.version_id
                )
            except StageConflict:
                continue
            return result
        raise StoreError(
            f"the pool secret {self.secret} changed under claudesec {MAX_CAS_ATTEMPTS} times",
            hint="another process is writing it in a loop; rerun later",
        )

    # ----------------------------------------------------------------- spares

    def add(self, spare: Spare) -> bool:
        """Add a spare; False if a spare with its key id is already there."""

        def change(doc: PoolDoc) -> tuple[PoolDoc, bool]:
            if any(s.key_id == spare.key_id for s in doc.spares):
                return doc, False
            return replace(doc, spares=(*doc.spares, spare)), True

        return self.update(change)

    def claim(self, secret: str, token: str, *, in_use: frozenset[str] = frozenset()) -> Spare:
        """Reserve one spare for the rotation of ``secret`` whose pending version is ``token``.

        A secret holds at most one claim: a claim left by a run that died before writing its
        pending version is taken over (re-tokened) instead of claiming a second spare, so a
        crash never strands a spare and never takes two. Claimed spares whose key is already
        in the secret (``in_use``: a finished rotation whose clean-up was lost) are dropped in
        the same swap, so they can never be handed out again.
        """
        now = iso(self.clock())

        def change(doc: PoolDoc) -> tuple[PoolDoc, Spare | None]:
            stale = {s.key_id for s in doc.claimed_by(secret) if s.key_id in in_use}
            if stale:
                doc = replace(doc, spares=tuple(s for s in doc.spares if s.key_id not in stale))
            mine = doc.claimed_by(secret)
            if mine:
                spare = mine[0]
                if spare.claim is not None and spare.claim.token == token:
                    return doc, spare
                # Keep the refusal count: a spare that Anthropic keeps refusing must not get
                # a clean slate just because a run died before writing its pending version.
                rejections = spare.claim.rejections if spare.claim is not None else 0
                moved = replace(
                    spare,
                    claim=Claim(secret=secret, token=token, at=now, rejections=rejections),
                )
                return doc.replace_spare(spare.key_id, moved), moved
            free = doc.unclaimed()
            if not free:
                return doc, None
            chosen = replace(free[0], claim=Claim(secret=secret, token=token, at=now))
            return doc.replace_spare(chosen.key_id, chosen), chosen

        claimed = self.update(change)
        if claimed is None:
            raise PoolEmpty(
                f"no spare key left in the pool {self.secret} to rotate {secret}",
                hint="create keys in the Console and load them with `claudesec keys pool add`",
            )
        return claimed

    def release(self, secret: str, key_ids: set[str]) -> list[str]:
        """Drop spares claimed by ``secret`` whose key is now in that secret."""

        def change(doc: PoolDoc) -> tuple[PoolDoc, list[str]]:
            gone = [s.key_id for s in doc.claimed_by(secret) if s.key_id in key_ids]
            if not gone:
                return doc, []
            return replace(doc, spares=tuple(s for s in doc.spares if s.key_id not in gone)), gone

        return self.update(change)

    def reject(self, secret: str, key_id: str) -> int:
        """Count one more run whose testSecret saw ``key_id`` refused; 0 if it is not claimed
        by ``secret`` (nothing to count on)."""

        def change(doc: PoolDoc) -> tuple[PoolDoc, int]:
            spare = next((s for s in doc.claimed_by(secret) if s.key_id == key_id), None)
            if spare is None or spare.claim is None:
                return doc, 0
            count = spare.claim.rejections + 1
            moved = replace(spare, claim=replace(spare.claim, rejections=count))
            return doc.replace_spare(key_id, moved), count

        return self.update(change)

    def abandon(self, secret: str, returned: list[Spare], discarded: set[str]) -> None:
        """Undo the claims of ``secret``: ``returned`` spares go back unclaimed (re-added if
        their claim was already gone), every other spare it claimed leaves the pool."""
        back = {s.key_id: replace(s, claim=None) for s in returned}

        def change(doc: PoolDoc) -> tuple[PoolDoc, None]:
            spares: list[Spare] = []
            for spare in doc.spares:
                mine = spare.claim is not None and spare.claim.secret == secret
                if spare.key_id in discarded or (mine and spare.key_id not in back):
                    continue
                spares.append(back.get(spare.key_id, spare) if mine else spare)
            present = {s.key_id for s in spares}
            spares.extend(s for k, s in back.items() if k not in present)
            return replace(doc, spares=tuple(spares)), None

        self.update(change)

    def mark_revoked(self, key_id: str, hint: str, secret: str, *, key: str = "") -> Revoked:
        """Remember for good that ``key_id`` was revoked (and take it out of the pool).

        ``key`` is kept until :meth:`revoke_verified`, so that any later run can finish the
        deactivation. An existing entry keeps its original time. Returns the entry.
        """
        entry = Revoked(key_id=key_id, hint=hint, secret=secret, at=iso(self.clock()), key=key)

        def change(doc: PoolDoc) -> tuple[PoolDoc, Revoked]:
            kept = doc.revoked.get(key_id, entry)
            if not kept.finished and not kept.key and key:
                kept = replace(kept, key=key)
            in_pool = any(s.key_id == key_id for s in doc.spares)
            if kept == doc.revoked.get(key_id) and not in_pool:
                return doc, kept
            revoked = {**doc.revoked, key_id: kept}
            spares = tuple(s for s in doc.spares if s.key_id != key_id)
            retiring = tuple(r for r in doc.retiring if r.key_id != key_id)
            return replace(doc, spares=spares, revoked=revoked, retiring=retiring), kept

        return self.update(change)

    def revoke_verified(self, key_id: str) -> None:
        """A run saw ``key_id`` refused: the revoke is finished and the key itself is dropped."""
        now = iso(self.clock())

        def change(doc: PoolDoc) -> tuple[PoolDoc, None]:
            entry = doc.revoked.get(key_id)
            if entry is None:
                return doc, None
            done = replace(entry, key="", verified_at=entry.verified_at or now)
            if done == entry:
                return doc, None
            return replace(doc, revoked={**doc.revoked, key_id: done}), None

        self.update(change)

    def remove(self, key_id: str) -> bool:
        def change(doc: PoolDoc) -> tuple[PoolDoc, bool]:
            if not any(s.key_id == key_id for s in doc.spares):
                return doc, False
            return doc.replace_spare(key_id, None), True

        return self.update(change)

    # ----------------------------------------------------------------- leases

    def acquire(self, secret: str, owner: str, ttl_s: int) -> Lease | None:
        """Take (or renew) the lease on ``secret``; the holder's lease if someone else has it."""
        now = self.clock()
        mine = Lease(owner=owner, expires_at=iso(now + timedelta(seconds=ttl_s)))

        def change(doc: PoolDoc) -> tuple[PoolDoc, Lease | None]:
            held = doc.leases.get(secret)
            if held is not None and held.owner != owner and not held.expired(now):
                return doc, held
            return replace(doc, leases={**doc.leases, secret: mine}), None

        return self.update(change)

    def release_lease(self, secret: str, owner: str) -> None:
        def change(doc: PoolDoc) -> tuple[PoolDoc, None]:
            held = doc.leases.get(secret)
            if held is None or held.owner != owner:
                return doc, None
            return replace(doc, leases={k: v for k, v in doc.leases.items() if k != secret}), None

        self.update(change)

    # ----------------------------------------------------------------- retiring keys

    def settle(self, secret: str, current_key_id: str, old: Retiring | None) -> None:
        """Book-keeping after ``AWSCURRENT`` moved to ``current_key_id``.

        Drops the spare claimed for that key and any retirement scheduled for it (a rollback
        brings a retiring key back), and schedules ``old`` for retirement, unless ``old`` was
        revoked: a revoked key must die at once, which the revocation does; an overlap window
        would keep a leaked key working.
        """

        def change(doc: PoolDoc) -> tuple[PoolDoc, None]:
            spares = tuple(
                s
                for s in doc.spares
                if not (s.claim is not None and s.claim.secret == secret)
                or s.key_id != current_key_id
            )
            retiring = [
                r for r in doc.retiring if not (r.secret == secret and r.key_id == current_key_id)
            ]
            if (
                old is not None
                and old.key_id != current_key_id
                and old.key_id not in doc.revoked
                and not any(r.key_id == old.key_id for r in retiring)
            ):
                retiring.append(old)
            return replace(doc, spares=spares, retiring=tuple(retiring)), None

        self.update(change)

    def retired(self, key_id: str) -> None:
        def change(doc: PoolDoc) -> tuple[PoolDoc, None]:
            return replace(doc, retiring=tuple(r for r in doc.retiring if r.key_id != key_id)), None

        self.update(change)

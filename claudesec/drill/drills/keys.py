"""Key drills: a deactivated key is dead, a rotation killed at any point heals, and a
secret's resource policy that lets an unlisted principal in is flagged."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from claudesec.drill import canary
from claudesec.drill.drills._servers import aws_client, moto_missing, start_emulator, start_moto
from claudesec.drill.interface import Drill
from claudesec.drill.model import DrillFailed, DrillInfraError

if TYPE_CHECKING:
    from claudesec.drill.context import DrillContext
    from claudesec.emulator import IssuedKey
    from claudesec.keys.rotation import KeyManager


class RevokedKey401(Drill):
    name = "revoked-key-401"
    title = "a key deactivated through the Admin API answers 401 at once"
    fix = (
        "`claudesec keys revoke` must deactivate the key through the Admin API; check the "
        "Admin key's permissions and anthropic.base_url."
    )

    def setup(self, ctx: DrillContext) -> None:
        from claudesec.anthropic_admin import AdminClient

        self.emulator = start_emulator(ctx)
        admin = self.emulator.state.add_key(
            "admin", secret=ctx.canary(canary.anthropic_key("admin"))
        )
        self.admin = AdminClient(self.emulator.base_url, admin.secret, max_retries=0)

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.anthropic_admin import probe_key

        key = self.emulator.state.add_key("api", secret=ctx.canary(canary.anthropic_key("api")))
        before = probe_key(self.emulator.base_url, key.secret, timeout_s=5)
        if before.outcome != "valid":
            raise DrillInfraError(f"the fresh key does not work to begin with ({before.status})")
        with ctx.attempt():
            self.admin.set_status(key.id, "inactive")
            self.after = probe_key(self.emulator.base_url, key.secret, timeout_s=5)
        self.key_id = key.id

    def verify(self, ctx: DrillContext) -> None:
        if self.after.outcome != "rejected" or self.after.status != 401:
            raise DrillFailed(
                "a deactivated key still works",
                f"key {self.key_id} answered {self.after.status} ({self.after.outcome}) after "
                "deactivation",
            )
        ctx.note(f"key {self.key_id}: 200 before, 401 after deactivation")


# --------------------------------------------------------------------------- crash matrix


class _Crash(Exception):
    """The rotating process died here."""


@dataclass
class _Killer:
    """Kills the process (every later call fails too) before or after boto3 call ``target``."""

    target: int | None
    when: str
    calls: list[str] = field(default_factory=list)
    dead: bool = False
    _current: int = -1

    def before(self, event_name: str, **_: Any) -> None:
        if self.dead:
            raise _Crash("dead")
        self._current = len(self.calls)
        self.calls.append(event_name.rsplit(".", 1)[-1])
        if self.when == "before" and self._current == self.target:
            self.dead = True
            raise _Crash(f"before {self.calls[-1]}")

    def after(self, event_name: str, **_: Any) -> None:
        if self.when == "after" and self._current == self.target:
            self.dead = True
            raise _Crash(f"after {event_name}")


@dataclass
class _Clock:
    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        from claudesec.keys.model import utcnow

        return utcnow() + self.offset


def _writes(operation: str) -> bool:
    return not operation.startswith(("Get", "Describe", "List"))


class RotationCrashResume(Drill):
    name = "rotation-crash-resume"
    title = (
        "a rotation killed at each step (before every AWS call, after every write) resumes "
        "with no orphaned key and no consumer outage"
    )
    fix = (
        "Run `claudesec keys rotate` again: it resumes from AWSPENDING. If keys are orphaned, "
        "`claudesec keys status` lists them; report the crash point shown in the evidence."
    )
    weight = 8

    def unavailable(self) -> str | None:
        return moto_missing()

    def setup(self, ctx: DrillContext) -> None:
        self.emulator = start_emulator(ctx)
        self.endpoint = start_moto(ctx)
        self.sm = aws_client(self.endpoint)
        admin = ctx.canary(canary.anthropic_key("admin"))
        self.admin_key = self.emulator.state.add_key("admin", secret=admin)
        self.case = 0
        self._lock = threading.Lock()
        # moto keeps its state per process, not per server: a unique prefix keeps this run
        # apart from any other, and cleanup deletes what it made.
        self.run_prefix = f"claudesec-drill-{uuid.uuid4().hex[:12]}/"

    def cleanup(self, ctx: DrillContext) -> None:
        prefix = getattr(self, "run_prefix", None)
        if prefix is None:
            return
        paginator = self.sm.get_paginator("list_secrets")
        for page in paginator.paginate(Filters=[{"Key": "name", "Values": [prefix]}]):
            for entry in page.get("SecretList", []):
                if entry["Name"].startswith(prefix):
                    self.sm.delete_secret(SecretId=entry["ARN"], ForceDeleteWithoutRecovery=True)

    def _manager(self, client: Any, clock: _Clock, prefix: str) -> KeyManager:
        from claudesec.anthropic_admin import AdminClient, probe_key
        from claudesec.keys.rotation import KeyManager, Settings
        from claudesec.stores.secretsmanager import SecretsManagerStore

        base = self.emulator.base_url
        return KeyManager(
            SecretsManagerStore(client),
            Settings(prefix=prefix, pool_secret=prefix + "pool", test_attempts=1, test_delay_s=0.0),
            admin=AdminClient(base, self.admin_key.secret, max_retries=0, sleep=lambda _: None),
            probe=partial(probe_key, base, timeout_s=5),
            clock=clock,
            sleep=lambda _: None,
        )

    def _new_key(self, ctx: DrillContext) -> IssuedKey:
        return self.emulator.state.add_key("api", secret=ctx.canary(canary.anthropic_key("api")))

    def _killable_client(self, killer: _Killer) -> Any:
        client = aws_client(self.endpoint)
        client.meta.events.register("before-call.secrets-manager", killer.before)
        client.meta.events.register("after-call.secrets-manager", killer.after)
        return client

    def _stage(self, ctx: DrillContext) -> tuple[str, _Clock, IssuedKey, list[IssuedKey]]:
        with self._lock:
            self.case += 1
            prefix = f"{self.run_prefix}{self.case}/"
        clock = _Clock()
        manager = self._manager(self.sm, clock, prefix)
        old = self._new_key(ctx)
        manager.add("app", old.secret)
        spares = [self._new_key(ctx) for _ in range(2)]
        for spare in spares:
            manager.pool_add(spare.secret)
        return prefix, clock, old, spares

    def inject(self, ctx: DrillContext) -> None:
        prefix, clock, _, _ = self._stage(ctx)
        reference = _Killer(None, "never")
        self._manager(self._killable_client(reference), clock, prefix).rotate(["app"], force=True)
        if "PutSecretValue" not in reference.calls:
            raise DrillInfraError(
                f"the reference rotation made no pending version: {reference.calls}"
            )
        self.problems: list[str] = []
        self.cases = 0
        # Dying after a read is the same as dying before the next call: only writes need both.
        points = [("before", i, op) for i, op in enumerate(reference.calls)]
        points += [("after", i, op) for i, op in enumerate(reference.calls) if _writes(op)]
        # Each crash point works on its own secrets and pool (own prefix), so they can run
        # side by side; the moto server and the emulator serve threads.
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="claudesec-drill-crash") as pool:
            for future in [pool.submit(self._one, ctx, *point) for point in points]:
                future.result()

    def _one(self, ctx: DrillContext, when: str, index: int, op: str) -> None:
        from claudesec.stores.interface import PENDING

        if ctx.cancel.is_set():
            return
        label = f"killed {when} call {index} ({op})"
        prefix, clock, old, spares = self._stage(ctx)
        killer = _Killer(index, when)
        with contextlib.suppress(_Crash):
            self._manager(self._killable_client(killer), clock, prefix).rotate(["app"], force=True)
        if ctx.cancel.is_set():
            return  # interrupted: the run stops, this point is not counted
        with self._lock:
            self.cases += 1
        secret = prefix + "app"
        outage = self._consumer_outage(secret)
        if outage:
            self.problems.append(f"{label}: consumers broken right after the crash: {outage}")
            return
        # The dead run's lease runs out; the next scheduled run must finish the job.
        clock.offset += timedelta(hours=1)
        manager = self._manager(self.sm, clock, prefix)
        with ctx.attempt():
            result = manager.rotate(["app"]).results[0]
            current = self._current(secret)
            if current == old.secret:
                result = manager.rotate(["app"], force=True).results[0]
        ctx.capture(f"{label} result", json.dumps(result.to_json()))
        if result.outcome not in ("rotated", "not_due"):
            self.problems.append(f"{label}: the next run ended {result.outcome}: {result.message}")
            return
        stages = self.sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
        if any(PENDING in s for s in stages.values()):
            self.problems.append(f"{label}: AWSPENDING left behind")
        current = self._current(secret)
        new = next((s for s in spares if s.secret == current), None)
        if new is None:
            self.problems.append(f"{label}: AWSCURRENT is not one of the spares")
            return
        outage = self._consumer_outage(secret)
        if outage:
            self.problems.append(f"{label}: consumers broken after the recovery: {outage}")
        problems = self._orphans(manager, old, new, [s for s in spares if s is not new])
        self.problems.extend(f"{label}: {p}" for p in problems)

    def _current(self, secret: str) -> str:
        value = self.sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")
        return str(json.loads(value["SecretString"])["key"])

    def _consumer_outage(self, secret: str) -> str:
        """What a consumer sees: the AWSCURRENT key must work."""
        from claudesec.anthropic_admin import probe_key

        answer = probe_key(self.emulator.base_url, self._current(secret), timeout_s=5)
        return "" if answer.outcome == "valid" else f"AWSCURRENT key answers {answer.status}"

    def _orphans(
        self, manager: KeyManager, old: IssuedKey, new: IssuedKey, others: list[IssuedKey]
    ) -> list[str]:
        from claudesec.keys.status import remote_inventory

        problems: list[str] = []
        state = self.emulator.state
        doc = manager.pool.read()
        claimed = [s.key_id for s in doc.spares if s.claim is not None]
        if claimed:
            problems.append(f"spares still claimed after the rotation finished: {claimed}")
        if new.id in {s.key_id for s in doc.spares}:
            problems.append(f"promoted key {new.id} is still in the pool")
        if old.id not in {r.key_id for r in doc.retiring}:
            problems.append(f"previous key {old.id} is not scheduled for retirement")
        for other in others:
            if other.id not in {s.key_id for s in doc.spares}:
                problems.append(f"unused spare {other.id} left the pool (orphaned)")
            if state.get_key(other.id).status != "inactive":
                problems.append(f"unused spare {other.id} is active")
        ours = {old.id, new.id, *(o.id for o in others)}
        for entry in remote_inventory(manager):
            if entry.key.id in ours and entry.marking in ("orphaned", "unmanaged"):
                problems.append(f"key {entry.key.id} is {entry.marking}")
        return problems

    def verify(self, ctx: DrillContext) -> None:
        if self.problems:
            raise DrillFailed(
                f"{len(self.problems)} of {self.cases} crash points did not heal cleanly",
                *self.problems[:10],
            )
        ctx.note(f"{self.cases} crash points (before every AWS call, after every write) healed")


# --------------------------------------------------------------------------- scope


class ScopeUnlistedPrincipal(Drill):
    name = "scope-unlisted-principal"
    title = "a secret policy that lets an unlisted principal in is flagged by the scope linter"
    fix = (
        "Re-apply the generated policy (`claudesec keys scope apply`) and find who edited it; "
        "if the linter missed it, report the policy shape."
    )

    def setup(self, ctx: DrillContext) -> None:
        from claudesec.keys import scope

        account = "111122223333"
        self.spec = scope.ScopeSpec(
            readers=(f"arn:aws:iam::{account}:role/orders-api",),
            rotator=f"arn:aws:iam::{account}:role/claudesec-rotator",
            break_glass=(f"arn:aws:iam::{account}:role/security-break-glass",),
        )
        self.intruder = f"arn:aws:iam::{account}:role/unlisted-intruder"
        self.policy = scope.build_policy(self.spec)
        control = scope.lint_policy(
            self.policy, readers=self.spec.readers, break_glass=self.spec.break_glass
        )
        if any(f.severity == "error" for f in control):
            raise DrillInfraError(
                "the generated policy itself does not lint clean: "
                + "; ".join(f.rule for f in control)
            )

    def _variants(self) -> dict[str, dict[str, Any]]:
        statements = self.policy["Statement"]
        grant = {
            "Sid": "Temporary",
            "Effect": "Allow",
            "Principal": {"AWS": self.intruder},
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": "*",
        }
        without_deny = [s for s in statements if s.get("Effect") != "Deny"]
        wildcard = json.loads(json.dumps(statements))
        wildcard[0]["Principal"]["AWS"] = ["arn:aws:iam::111122223333:role/*"]
        public = [*statements, {**grant, "Principal": "*"}]
        return {
            "unlisted principal granted and the deny removed": {
                **self.policy,
                "Statement": [*without_deny, grant],
            },
            "readers widened to a wildcard role": {**self.policy, "Statement": wildcard},
            "read granted to everyone": {**self.policy, "Statement": public},
        }

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.keys import scope

        self.verdicts: dict[str, list[str]] = {}
        for label, policy in self._variants().items():
            with ctx.attempt():
                findings = scope.lint_policy(
                    policy, readers=self.spec.readers, break_glass=self.spec.break_glass
                )
            self.verdicts[label] = [f.rule for f in findings if f.severity == "error"]

    def verify(self, ctx: DrillContext) -> None:
        missed = [label for label, rules in self.verdicts.items() if not rules]
        if missed:
            raise DrillFailed(
                "the scope linter passed a policy that lets an unlisted principal in",
                *(f"not flagged: {label}" for label in missed),
            )
        for label, rules in self.verdicts.items():
            ctx.note(f"{label}: {', '.join(rules)}")


__all__ = ["RevokedKey401", "RotationCrashResume", "ScopeUnlistedPrincipal"]

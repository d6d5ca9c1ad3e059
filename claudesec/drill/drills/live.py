"""Live drills: the same questions asked of the real organisation and the real AWS account.

They run only when credentials are configured (the Admin API key named by
``anthropic.admin_key_source``, and AWS credentials for Secrets Manager); otherwise each is
skipped with the reason. They change nothing: they read the managed secrets, list keys, probe
keys that should be dead, and ask IAM's policy simulator.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from claudesec.drill.interface import Drill
from claudesec.drill.model import DrillFailed, DrillSkipped

if TYPE_CHECKING:
    from claudesec.drill.context import DrillContext

UNLISTED_USER = "claudesec-drill-unlisted"


class _LiveDrill(Drill):
    tags = ("live",)

    def unavailable(self) -> str | None:
        config = self.settings.config
        if config is None:
            return "no claudesec configuration loaded"
        source = config.anthropic.admin_key_source
        if source.startswith("env:") and not self.settings.environ.get(source[4:]):
            # Every live drill reads through the key manager, which needs both.
            return (
                f"no credentials: {source[4:]} is not set "
                "(live drills need the Admin API key and AWS credentials)"
            )
        if config.keys.store != "secretsmanager":
            return "keys.store is not secretsmanager"
        if self.settings.client_factory is None and not _aws_credentials(config.keys.aws_region):
            return "no AWS credentials configured"
        return None

    def setup(self, ctx: DrillContext) -> None:
        from claudesec.keys.factory import open_manager

        assert self.settings.config is not None
        # audit=False: a drill reads, it does not add rotation events to the user's log.
        self.manager = open_manager(self.settings.config, audit=False)
        ctx.resources.callback(self.manager.close)


def _aws_credentials(region: str) -> bool:
    import boto3

    return boto3.Session(region_name=region or None).get_credentials() is not None


class RotatedOutRejected(_LiveDrill):
    name = "live-rotated-out-key-rejected"
    title = "every rotated-out key past its overlap is rejected by the real API"
    fix = "Run `claudesec keys rotate` (it retires old keys) or `claudesec keys revoke` the key."

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.keys.model import ManagedKey
        from claudesec.stores.interface import CURRENT, PENDING

        manager = self.manager
        retiring = {r.key_id for r in manager.pool.read().retiring}
        self.answers: list[tuple[str, str, int]] = []
        for state in manager.managed():
            for version_id, stages in state.versions.items():
                if CURRENT in stages or PENDING in stages:
                    continue
                value = manager.store.read(state.name, version_id=version_id)
                key = ManagedKey.from_json(value.text, secret=state.name)
                ctx.canary(key.key)
                if key.key_id in retiring:
                    continue  # still in its overlap window: consumers may hold it
                with ctx.attempt():
                    answer = manager.probe(key.key)
                self.answers.append((key.key_id, answer.outcome, answer.status))

    def verify(self, ctx: DrillContext) -> None:
        if not self.answers:
            raise DrillSkipped("no rotated-out key past its overlap window yet")
        alive = [
            f"{kid} answered {status}"
            for kid, outcome, status in self.answers
            if outcome != "rejected"
        ]
        if alive:
            raise DrillFailed("a rotated-out key still works", *alive)
        ctx.note(f"{len(self.answers)} rotated-out key(s) rejected")


class PolicyDeniesUnlisted(_LiveDrill):
    name = "live-secret-policy-denies-unlisted"
    title = "each managed secret's resource policy denies an unlisted principal (IAM simulation)"
    fix = "Apply least-privilege policies: `claudesec keys scope plan` then `keys scope apply`."

    def _iam(self) -> Any:
        if self.settings.client_factory is not None:
            return self.settings.client_factory("iam")
        import boto3

        return boto3.client("iam")

    def inject(self, ctx: DrillContext) -> None:
        manager = self.manager
        store: Any = manager.store
        iam = self._iam()
        names = [s.name for s in manager.managed()] + [manager.settings.pool_secret]
        # The unlisted principal holds an identity policy allowing everything: only the
        # secret's own resource policy can stop it.
        identity = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}],
            }
        )
        self.decisions: dict[str, str] = {}
        for name in names:
            policy = store.get_policy(name)
            if policy is None:
                self.decisions[name] = "no resource policy"
                continue
            arn = store.client.describe_secret(SecretId=name)["ARN"]
            account = arn.split(":")[4]
            with ctx.attempt():
                answer = iam.simulate_custom_policy(
                    PolicyInputList=[identity],
                    ActionNames=["secretsmanager:GetSecretValue"],
                    ResourceArns=[arn],
                    ResourcePolicy=policy,
                    ResourceOwner=f"arn:aws:iam::{account}:root",
                    CallerArn=f"arn:aws:iam::{account}:user/{UNLISTED_USER}",
                )
            results = answer.get("EvaluationResults", [])
            self.decisions[name] = results[0]["EvalDecision"] if results else "no result"

    def verify(self, ctx: DrillContext) -> None:
        if not self.decisions:
            raise DrillSkipped("no managed secrets")
        open_ = [
            f"{name}: {decision}"
            for name, decision in self.decisions.items()
            if decision not in ("explicitDeny", "implicitDeny")
        ]
        if open_:
            raise DrillFailed("an unlisted principal could read a managed secret", *open_)
        for name, decision in self.decisions.items():
            ctx.note(f"{name}: {decision}")


class NoKeyPastMaxAge(_LiveDrill):
    name = "live-no-key-past-max-age"
    title = "no managed key is past its max age"
    fix = "Run `claudesec keys rotate --all` (schedule it) and keep the pool stocked."

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.keys.status import status

        with ctx.attempt():
            self.report = status(self.manager, remote=False)

    def verify(self, ctx: DrillContext) -> None:
        if not self.report.keys:
            raise DrillSkipped("no managed keys")
        overdue = [f"{k.name}: {k.key_id} due {k.due_at}" for k in self.report.keys if k.overdue]
        if overdue:
            raise DrillFailed("a managed key is past its max age", *overdue)
        ctx.note(f"{len(self.report.keys)} managed key(s) within max age")


class NoUnmanagedActiveKey(_LiveDrill):
    name = "live-no-unmanaged-active-key"
    title = "the organisation has no active API key that claudesec does not manage"
    fix = (
        "Bring the key under management (`claudesec keys add`) or deactivate it in the "
        "Console; `claudesec keys remote` lists them."
    )

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.keys.status import remote_inventory

        with ctx.attempt():
            self.entries = remote_inventory(self.manager)

    def verify(self, ctx: DrillContext) -> None:
        stray = [
            f"{e.key.id} ({e.key.name}): {e.marking}"
            for e in self.entries
            if e.key.status == "active" and e.marking in ("unmanaged", "orphaned")
        ]
        if stray:
            raise DrillFailed("active keys outside claudesec's control", *stray)
        ctx.note(f"{len(self.entries)} organisation key(s), none active outside management")

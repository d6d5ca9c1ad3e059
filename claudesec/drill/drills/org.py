"""Organisation posture drills: ``org check`` catches every critical misconfiguration.

The offline drill judges the messy organisation (every item in the Admin API's JSON shape;
see :mod:`claudesec.org.samples`; the emulator's ``--org messy`` seed is to serve the same
organisation) and
proves each critical check of the catalogue fires on it, and that the clean organisation
raises nothing: a check that stops firing, or starts firing on a clean org, fails the drill.
The live drill runs the catalogue against the real organisation when the Admin API key is
set, and fails on any critical finding.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from claudesec.drill.interface import Drill
from claudesec.drill.model import DrillFailed

if TYPE_CHECKING:
    from claudesec.drill.context import DrillContext
    from claudesec.org.check import CheckRun
    from claudesec.org.model import OrgInventory


def _critical_ids() -> list[str]:
    from claudesec.org.catalogue import CHECKS
    from claudesec.org.rules import Severity

    return [c.id for c in CHECKS if c.severity is Severity.CRITICAL]


class OrgPostureCritical(Drill):
    name = "org-posture-critical"
    title = "org check on the messy organisation fires every critical check, the clean one none"
    fix = (
        "A check stopped firing (or fires on a clean org): see claudesec/org/checks and its tests."
    )
    tags = ("offline",)

    def organisations(self, now: datetime) -> tuple[OrgInventory, OrgInventory]:
        """The messy and the clean organisation (the emulator's seeds, once it serves them)."""
        from claudesec.org import samples

        return samples.messy(now), samples.clean(now)

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.config import OrgConfig
        from claudesec.org import samples
        from claudesec.org.check import run_checks

        now = datetime.now(UTC)
        config = replace(OrgConfig(), **samples.MESSY_SETTINGS)
        messy, clean = self.organisations(now)
        with ctx.attempt():
            self.messy: CheckRun = run_checks(
                messy,
                config,
                now=now,
                key_markings=samples.MESSY_MARKINGS,
                federation_findings=samples.MESSY_FEDERATION,
            )
        self.clean: CheckRun = run_checks(
            clean,
            config,
            now=now,
            key_markings=samples.CLEAN_MARKINGS,
            federation_findings=samples.CLEAN_FEDERATION,
        )

    def verify(self, ctx: DrillContext) -> None:
        fired = {f.check_id for f in self.messy.findings}
        critical = _critical_ids()
        missed = [c for c in critical if c not in fired]
        if missed:
            raise DrillFailed("critical checks did not fire on the messy organisation", *missed)
        noisy = [f"{f.check_id} {f.resource}" for f in self.clean.findings]
        if noisy:
            raise DrillFailed("checks fired on the clean organisation", *noisy[:10])
        ctx.note(f"{len(critical)} critical checks fired: {', '.join(critical)}")
        ctx.note(f"messy: {len(self.messy.findings)} findings; clean: 0")


class LiveOrgPosture(Drill):
    name = "live-org-posture"
    title = "the real organisation has no critical org check finding"
    fix = "Run `claudesec org check --severity critical` and follow each finding's fix."
    tags = ("live",)

    def unavailable(self) -> str | None:
        config = self.settings.config
        if config is None:
            return "no claudesec configuration loaded"
        source = config.anthropic.admin_key_source
        if source.startswith("env:") and not self.settings.environ.get(source[4:]):
            return (
                f"no credentials: {source[4:]} is not set "
                "(the live org check needs an Admin API key)"
            )
        return None

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.org import federation
        from claudesec.org.check import run_checks
        from claudesec.org.inventory import reader_from_config

        config = self.settings.config
        assert config is not None
        with ctx.attempt():
            inventory = reader_from_config(config, environ=self.settings.environ).read()
            self.run: CheckRun = run_checks(
                inventory,
                config.org,
                now=datetime.now(UTC),
                federation_findings=federation.lint(inventory),
            )

    def verify(self, ctx: DrillContext) -> None:
        critical = [f for f in self.run.findings if f.severity.value == "critical"]
        if critical:
            raise DrillFailed(
                "the organisation has critical findings",
                *(f"{f.check_id} {f.resource}: {f.message}" for f in critical[:20]),
            )
        ctx.note(f"{len(self.run.outcomes)} checks, {self.run.count('skip')} skipped")

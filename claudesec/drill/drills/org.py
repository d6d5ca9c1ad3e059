"""Organisation posture drills: ``org check`` catches every critical misconfiguration.

The offline drill starts the emulator on loopback, seeds its messy organisation (the one
``claudesec emulator serve --org messy`` serves), reads it over HTTP with the real inventory
reader, and proves each critical check of the catalogue fires on it; then it reads the clean
organisation and proves nothing fires there: a check that stops firing, or starts firing on
a clean organisation, fails the drill. The live drill runs the catalogue against the real
organisation when the Admin API key is set, and fails on any critical finding.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from claudesec.drill.drills._servers import start_emulator
from claudesec.drill.interface import Drill
from claudesec.drill.model import DrillFailed

if TYPE_CHECKING:
    from claudesec.drill.context import DrillContext
    from claudesec.emulator import Emulator
    from claudesec.org.check import CheckRun
    from claudesec.org.model import OrgInventory


def _critical_ids() -> list[str]:
    from claudesec.org.catalogue import CHECKS
    from claudesec.org.rules import Severity

    return [c.id for c in CHECKS if c.severity is Severity.CRITICAL]


def _served(emulator: Emulator, name: str) -> OrgInventory:
    """The emulator's seeded organisation ``name`` as ``org inventory`` reads it."""
    from claudesec.emulator.orgs import seed_org
    from claudesec.org.http import AdminHttp
    from claudesec.org.inventory import InventoryReader

    emulator.state.reset()
    seed_org(emulator.state, name)
    admin = emulator.state.add_key("admin", name="drill-org-reader")
    token = emulator.state.add_oauth_token(scopes=("org:admin",)).access_token
    return InventoryReader(
        AdminHttp(emulator.base_url, timeout_s=10), admin_key=admin.secret, oauth_token=token
    ).read()


class OrgPostureCritical(Drill):
    name = "org-posture-critical"
    title = "org check on the messy organisation fires every critical check, the clean one none"
    fix = (
        "A check stopped firing (or fires on a clean org): see claudesec/org/checks and its tests."
    )
    tags = ("offline",)
    # The emulator's organisations judged (`claudesec emulator serve --org NAME`).
    messy_org = "messy"
    clean_org = "clean"

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.config import OrgConfig
        from claudesec.emulator.org_fixtures import ORG_CHECK_SETTINGS
        from claudesec.org import federation
        from claudesec.org.check import run_checks

        emulator = start_emulator(ctx)
        config = replace(OrgConfig(), **ORG_CHECK_SETTINGS)
        now = datetime.now(UTC)
        with ctx.attempt():
            messy = _served(emulator, self.messy_org)
            self.messy: CheckRun = run_checks(
                messy, config, now=now, federation_findings=federation.lint(messy)
            )
        clean = _served(emulator, self.clean_org)
        self.clean: CheckRun = run_checks(
            clean, config, now=now, federation_findings=federation.lint(clean)
        )
        unread = [u.kind for u in (*messy.unavailable, *clean.unavailable)]
        if unread:
            raise DrillFailed("the emulator's organisation was not read whole", *unread)

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

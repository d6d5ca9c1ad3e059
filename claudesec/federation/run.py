"""One function per ``claudesec federation`` command: config in, result out.

The CLI parses options, calls one of these, and renders what it returns; everything that
decides (which problems stop a run, which objects are linted, what the exit code means) is
here or in the modules these call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from claudesec.anthropic_oauth import OrgAdminClient, org_admin_client
from claudesec.config import LoadedConfig
from claudesec.errors import ConfigError, ExitCode
from claudesec.federation.apply import ApplyReport, apply_plan
from claudesec.federation.lint import LintFinding, lint_rules, lint_spec
from claudesec.federation.org import OrgFederation, read_org
from claudesec.federation.plan import Plan, make_plan
from claudesec.federation.spec import FederationSpec, load_spec

LintSource = Literal["config", "org", "all"]


class ConfigProblems(ConfigError):
    """Several config problems: each is a line of its own, the exit code is 2."""

    def __init__(self, problems: tuple[ConfigError, ...]) -> None:
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the [federation] config",
            hint="see the lines above; `claudesec config validate` lists them too",
        )


def checked_spec(loaded: LoadedConfig) -> FederationSpec:
    """The config's federation spec, or :class:`ConfigProblems` naming every problem."""
    spec, problems = load_spec(loaded)
    if problems:
        raise ConfigProblems(problems)
    return spec


@dataclass(frozen=True)
class PlanResult:
    spec: FederationSpec
    org: OrgFederation
    plan: Plan
    client: OrgAdminClient

    def exit_code(self, *, check: bool) -> ExitCode:
        """With ``check`` (drift detection), differences are a finding (exit 1)."""
        return ExitCode.FOUND if check and not self.plan.empty else ExitCode.OK


def plan_federation(loaded: LoadedConfig, client: OrgAdminClient | None = None) -> PlanResult:
    spec = checked_spec(loaded)
    client = client or org_admin_client(loaded.config.anthropic)
    org = read_org(client)
    return PlanResult(spec, org, make_plan(spec, org), client)


def apply_federation(result: PlanResult) -> ApplyReport:
    """Apply a plan shown to (and confirmed by) the user."""
    return apply_plan(result.client, result.plan, result.org)


def list_federation(loaded: LoadedConfig) -> OrgFederation:
    return read_org(org_admin_client(loaded.config.anthropic))


@dataclass(frozen=True)
class LintResult:
    findings: tuple[LintFinding, ...]
    threshold: str

    @property
    def failing(self) -> list[LintFinding]:
        return [f for f in self.findings if f.at_least(self.threshold)]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FOUND if self.failing else ExitCode.OK


def lint_federation(
    loaded: LoadedConfig,
    *,
    source: LintSource = "all",
    threshold: str = "medium",
    client: OrgAdminClient | None = None,
) -> LintResult:
    """Lint the config's rules, the organisation's live ones, or both."""
    findings: list[LintFinding] = []
    if source in ("config", "all"):
        findings.extend(lint_spec(checked_spec(loaded)))
    if source in ("org", "all"):
        org = read_org(client or org_admin_client(loaded.config.anthropic))
        memberships = {
            account_id: [
                {**member, "_workspace_name": org.workspace_name(str(member["workspace_id"]))}
                for member in members
            ]
            for account_id, members in org.memberships.items()
        }
        findings.extend(
            lint_rules(org.issuers, org.rules, org.service_accounts, memberships=memberships)
        )
    return LintResult(tuple(findings), threshold)

"""``claudesec org check``: judge one inventory against the catalogue, as a frozen result.

:func:`run_checks` evaluates every check of :data:`~claudesec.org.catalogue.CHECKS` (or the
ones asked for) against an :class:`~claudesec.org.model.OrgInventory`. A check whose inventory
kinds could not be read, or that has nothing to judge, is *skipped* with its reason, never
passed. Findings are then matched against the configured suppressions (each with a reason and
an optional expiry: an expired one stops suppressing and warns) and the baseline file (known
findings by fingerprint). :attr:`CheckRun.exit_code` is 1 when a finding left at or above the
severity threshold remains.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from claudesec.config import OrgConfig, OrgSuppressionConfig
from claudesec.errors import ConfigError, ExitCode, UsageError
from claudesec.org.catalogue import CHECKS, CHECKS_BY_ID
from claudesec.org.model import OrgInventory
from claudesec.org.rules import Check, CheckContext, Hit, NotApplicable, Severity

Status = Literal["pass", "fail", "skip"]
BASELINE_VERSION = 1


@dataclass(frozen=True)
class Finding:
    """One resource failing one check. ``fingerprint`` is stable across runs (check id and
    resource), so a baseline or a SARIF alert follows the same finding."""

    check_id: str
    severity: Severity
    resource: str
    message: str
    fingerprint: str
    suppressed: str = ""  # why it is not counted: "suppression: <reason>" or "baseline"


@dataclass(frozen=True)
class Outcome:
    check: Check
    status: Status
    findings: tuple[Finding, ...] = ()
    reason: str = ""  # why a check was skipped


@dataclass(frozen=True)
class CheckRun:
    """Everything ``org check`` found, in catalogue order."""

    organization_id: str
    checked_at: datetime
    outcomes: tuple[Outcome, ...]
    threshold: Severity
    warnings: tuple[str, ...] = ()

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Findings neither suppressed nor in the baseline."""
        return tuple(f for o in self.outcomes for f in o.findings if not f.suppressed)

    @property
    def suppressed(self) -> tuple[Finding, ...]:
        return tuple(f for o in self.outcomes for f in o.findings if f.suppressed)

    @property
    def failing(self) -> tuple[Finding, ...]:
        """Findings at or above the threshold: what makes the exit code 1."""
        return tuple(f for f in self.findings if f.severity.rank >= self.threshold.rank)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FOUND if self.failing else ExitCode.OK


@dataclass(frozen=True)
class Suppressions:
    """The configured suppressions, validated: a missing reason or a bad date is an error."""

    entries: tuple[OrgSuppressionConfig, ...] = ()
    expiry: Mapping[int, date] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: OrgConfig, *, path: str | None = None) -> Suppressions:
        validate_suppressions(config, path=path)
        expiry = {
            i: date.fromisoformat(s.expires) for i, s in enumerate(config.suppressions) if s.expires
        }
        return cls(tuple(config.suppressions), expiry)

    def match(self, finding: Finding, today: date) -> tuple[str, str]:
        """``(suppressed-by, warning)`` for ``finding``: empty strings when none applies."""
        warning = ""
        for i, entry in enumerate(self.entries):
            if entry.check != finding.check_id:
                continue
            if not fnmatch.fnmatchcase(finding.resource, entry.resource or "*"):
                continue
            expires = self.expiry.get(i)
            if expires is not None and expires < today:
                warning = (
                    f"suppression of {entry.check} for {entry.resource} expired on {expires}: "
                    "it no longer suppresses; renew or remove it in [[org.suppressions]]"
                )
                continue
            return f"suppression: {entry.reason}", ""
        return "", warning


def validate_suppressions(config: OrgConfig, *, path: str | None = None) -> None:
    """Every ``[[org.suppressions]]`` names a known check, gives a reason and a valid date."""
    for i, entry in enumerate(config.suppressions):
        where = f"org.suppressions[{i}]"
        if entry.check not in CHECKS_BY_ID:
            raise ConfigError(
                f"'{where}.check' names no check: {entry.check!r}",
                path=path,
                hint="`claudesec org check --list` names them (ids like ORG-KEY-001)",
            )
        if not entry.reason.strip():
            raise ConfigError(
                f"'{where}' for {entry.check} has no reason",
                path=path,
                hint='every suppression says why the finding is accepted: add reason = "..."',
            )
        if entry.expires:
            try:
                date.fromisoformat(entry.expires)
            except ValueError:
                raise ConfigError(
                    f"'{where}.expires' must be a date YYYY-MM-DD, got {entry.expires!r}",
                    path=path,
                ) from None


def fingerprint(check_id: str, resource: str) -> str:
    return hashlib.sha256(f"{check_id}\0{resource}".encode()).hexdigest()[:32]


def _evaluate(check: Check, inventory: OrgInventory, ctx: CheckContext) -> Outcome:
    unavailable = {u.kind: u for u in inventory.unavailable}
    for kind in check.needs:
        if not inventory.has(kind):
            gone = unavailable.get(kind)
            reason = (
                f"{kind} unavailable ({gone.reason}): {gone.message}"
                if gone is not None
                else f"{kind} was not read by this inventory"
            )
            return Outcome(check, "skip", reason=reason)
    try:
        hits: Iterable[Hit] = list(check.evaluate(inventory, ctx))
    except NotApplicable as exc:
        return Outcome(check, "skip", reason=exc.reason)
    unique = list(dict.fromkeys(hits))  # one finding per resource and message
    per_resource = Counter(hit.resource for hit in unique)
    findings = tuple(
        Finding(
            check.id,
            check.severity,
            hit.resource,
            hit.message,
            # Stable per check and resource; a resource failing one check for two reasons
            # gets one id per reason, or the second would share the first's baseline entry
            # and SIEM id (and be dropped as its duplicate).
            fingerprint(check.id, hit.resource)
            if per_resource[hit.resource] == 1
            else fingerprint(check.id, f"{hit.resource}\0{hit.message}"),
        )
        for hit in unique
    )
    return Outcome(check, "fail" if findings else "pass", findings)


def run_checks(
    inventory: OrgInventory,
    config: OrgConfig,
    *,
    now: datetime,
    key_markings: Mapping[str, str] | None = None,
    federation_findings: Sequence[Hit] | None = None,
    only: Sequence[str] = (),
    threshold: Severity | None = None,
    baseline: frozenset[str] = frozenset(),
    config_path: str | None = None,
) -> CheckRun:
    """Judge ``inventory``; see the module docstring."""
    suppressions = Suppressions.from_config(config, path=config_path)
    for check_id in only:
        if check_id not in CHECKS_BY_ID:
            raise UsageError(f"unknown check {check_id!r}", hint="`org check --list` names them")
    ctx = CheckContext(
        config=config,
        now=now,
        key_markings=key_markings,
        federation_findings=None if federation_findings is None else tuple(federation_findings),
    )
    chosen = [CHECKS_BY_ID[i] for i in only] if only else list(CHECKS)
    warnings: list[str] = []
    outcomes: list[Outcome] = []
    for check in chosen:
        outcome = _evaluate(check, inventory, ctx)
        if outcome.findings:
            marked = []
            for finding in outcome.findings:
                by, warning = suppressions.match(finding, now.date())
                if warning and warning not in warnings:
                    warnings.append(warning)
                if not by and finding.fingerprint in baseline:
                    by = "baseline"
                marked.append(_with(finding, by))
            outcome = Outcome(check, outcome.status, tuple(marked), outcome.reason)
        outcomes.append(outcome)
    return CheckRun(
        organization_id=inventory.organization_id,
        checked_at=now,
        outcomes=tuple(outcomes),
        threshold=threshold or Severity(config.fail_severity),
        warnings=tuple(warnings),
    )


def _with(finding: Finding, suppressed: str) -> Finding:
    if not suppressed:
        return finding
    return Finding(
        finding.check_id,
        finding.severity,
        finding.resource,
        finding.message,
        finding.fingerprint,
        suppressed,
    )


# --------------------------------------------------------------------------- baseline


def read_baseline(path: Path) -> frozenset[str]:
    """The fingerprints of a baseline file written by ``--write-baseline``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"baseline file not found: {path}",
            hint="create it with `org check --write-baseline FILE`",
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read baseline {path}: {exc}") from None
    entries = data.get("findings") if isinstance(data, dict) else None
    if data.get("version") != BASELINE_VERSION or not isinstance(entries, list):
        raise UsageError(f"{path} is not an org check baseline (version {BASELINE_VERSION})")
    return frozenset(str(e.get("fingerprint")) for e in entries if isinstance(e, dict))


def baseline_document(run: CheckRun) -> str:
    """Every current finding (suppressed ones excluded), by fingerprint, for review in git."""
    entries = [
        {"fingerprint": f.fingerprint, "check": f.check_id, "resource": f.resource}
        for o in run.outcomes
        for f in o.findings
        if not f.suppressed.startswith("suppression")
    ]
    document = {
        "version": BASELINE_VERSION,
        "organization_id": run.organization_id,
        "findings": entries,
    }
    return json.dumps(document, indent=2) + "\n"


def write_baseline(run: CheckRun, path: Path) -> int:
    """Write the baseline atomically; returns how many findings it holds."""
    import os
    import tempfile

    text = baseline_document(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return text.count('"fingerprint"')

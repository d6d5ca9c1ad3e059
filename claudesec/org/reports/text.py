"""Human-readable report: one line per failing check and its findings, skipped checks with
their reason, and a summary; or, with a framework, one block per control."""

from __future__ import annotations

from claudesec.org.check import CheckRun, Outcome
from claudesec.org.reports.grouping import by_control
from claudesec.org.rules import FRAMEWORK_NAMES

STYLES = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
_MARK = {"fail": "FAIL", "pass": "pass", "skip": "skip"}


def _outcome_lines(outcome: Outcome, indent: str = "") -> list[tuple[str, str]]:
    check = outcome.check
    head = f"{indent}{_MARK[outcome.status]} {check.id} [{check.severity}] {check.title}"
    if outcome.status == "skip":
        return [(f"{head}: skipped ({outcome.reason})", "dim")]
    if outcome.status == "pass":
        return [(head, "green")]
    out = [(head, STYLES[check.severity.value])]
    for finding in outcome.findings:
        note = f"  [{finding.suppressed}]" if finding.suppressed else ""
        out.append(
            (
                f"{indent}    {finding.resource}: {finding.message}{note}",
                "dim" if finding.suppressed else "",
            )
        )
    if any(not f.suppressed for f in outcome.findings):
        out.append((f"{indent}    fix: {check.remediation}", ""))
    return out


def lines(
    run: CheckRun, framework: str | None = None, *, verbose: bool = False
) -> list[tuple[str, str]]:
    """``(line, style)`` pairs: styled by the CLI on a terminal, plain otherwise. Passing
    checks are listed only with ``verbose`` (or under a framework, where each control shows
    every check)."""
    out: list[tuple[str, str]] = []
    if framework:
        out.append((f"{FRAMEWORK_NAMES[framework]}:", "bold"))
        for control in by_control(run, framework):
            out.append(
                (
                    f"{control.id}: {control.status.upper()}",
                    "bold" if control.status == "fail" else "",
                )
            )
            for outcome in control.outcomes:
                out.extend(_outcome_lines(outcome, "  "))
    else:
        for outcome in run.outcomes:
            if outcome.status == "fail" or verbose or outcome.status == "skip":
                out.extend(_outcome_lines(outcome))
    out.extend((f"warning: {w}", "yellow") for w in run.warnings)
    return out


def summary(run: CheckRun) -> str:
    """One line for stderr."""
    parts = [
        f"{len(run.outcomes)} checks: {run.count('fail')} failed, {run.count('pass')} passed, "
        f"{run.count('skip')} skipped",
        f"{len(run.findings)} finding{'s' if len(run.findings) != 1 else ''}",
        f"{len(run.failing)} at or above {run.threshold}",
    ]
    if run.suppressed:
        parts.append(f"{len(run.suppressed)} suppressed or baselined")
    return f"claudesec org check ({run.organization_id}): " + ", ".join(parts)


def render(run: CheckRun, framework: str | None = None) -> str:
    text = [line for line, _ in lines(run, framework)]
    text.append(summary(run))
    return "\n".join(text) + "\n"

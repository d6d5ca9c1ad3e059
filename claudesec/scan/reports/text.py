"""Human-readable report: ``path:line:col: rule [severity] kind hint`` and how to fix it."""

from __future__ import annotations

from collections import Counter

from claudesec.scan.model import Finding, ScanResult
from claudesec.scan.reports.interface import ReportFormat

# With --dedup, the other places of a secret listed under it (the JSON report has them all).
MAX_PLACES_SHOWN = 10
_STYLES = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def location(finding: Finding, root: str) -> str:
    path = finding.path
    if root not in (".", "", "-") and not path.startswith(root):
        path = f"{root.rstrip('/')}/{path}"
    return f"{path}:{finding.line}:{finding.column}"


class TextFormat(ReportFormat):
    name = "text"

    def lines(self, result: ScanResult) -> list[tuple[str, str]]:
        """``(line, style)`` pairs: the CLI styles them on a terminal, plain text elsewhere."""
        out: list[tuple[str, str]] = []
        for finding in result.findings:
            head = (
                f"{location(finding, result.root)}: {finding.rule_id} [{finding.severity}] "
                f"{finding.kind} {finding.hint}"
            )
            out.append((head, _STYLES.get(finding.severity, "")))
            if finding.commit is not None:
                commit = finding.commit
                first = "introduced in commit" if finding.history is not None else "commit"
                out.append(
                    (
                        f"    {first} {commit.sha[:12]} by {commit.author} <{commit.email}> "
                        f"on {commit.date}",
                        "dim",
                    )
                )
            span = finding.history
            if span is not None:
                where = "still in HEAD" if span.in_tree else "no longer in HEAD"
                paths = f", under {span.paths} paths" if span.paths > 1 else ""
                out.append(
                    (
                        f"    last in commit {span.last.sha[:12]} on {span.last.date}; {where}; "
                        f"in {span.commits} commit{'s' if span.commits != 1 else ''}{paths}",
                        "bold" if span.in_tree else "dim",
                    )
                )
            if finding.also_at:
                n = len(finding.also_at)
                shown = ", ".join(finding.also_at[:MAX_PLACES_SHOWN])
                more = f" and {n - MAX_PLACES_SHOWN} more" if n > MAX_PLACES_SHOWN else ""
                out.append(
                    (f"    also in {n} more place{'s' if n != 1 else ''}: {shown}{more}", "dim")
                )
            if finding.verification is not None:
                detail = f" ({finding.verification_detail})" if finding.verification_detail else ""
                style = "bold red" if finding.verification == "live" else "dim"
                out.append((f"    verified: {finding.verification}{detail}", style))
            if finding.response is not None:
                style = "bold red" if finding.response in ("failed", "refused") else "bold"
                out.append((f"    {finding.response}: {finding.response_detail}", style))
            out.append((f"    fix: {finding.fix}", ""))
            out.append(
                (
                    f"    allow: if this is not a real secret, add `claudesec:allow "
                    f"{finding.rule_id}` on this line or the line above",
                    "dim",
                )
            )
        return out

    def render(self, result: ScanResult) -> str:
        lines = [text for text, _ in self.lines(result)]
        return "\n".join(lines) + ("\n" if lines else "")


def summary(result: ScanResult) -> str:
    """One line for stderr: counts, suppressions, and how to accept findings."""
    stats = result.stats
    scanned = (
        f"{stats.blobs} blobs in {stats.commits} commits"
        if result.source == "history"
        else f"{stats.files} file{'s' if stats.files != 1 else ''}"
    )
    suppressed = stats.suppressed_inline + stats.suppressed_path + stats.suppressed_baseline
    parts = [
        f"{len(result.findings)} finding{'s' if len(result.findings) != 1 else ''} in {scanned}",
        f"{stats.bytes / 1048576:.1f} MB in {result.duration_s:.2f}s",
    ]
    if suppressed:
        parts.append(f"{suppressed} suppressed")
    if stats.duplicates:
        n = stats.duplicates
        parts.append(f"{n} more cop{'ies' if n != 1 else 'y'} of these secrets (--dedup)")
    verdicts = Counter(f.verification for f in result.findings if f.verification)
    if verdicts:
        parts.append(", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())))
        if result.fail_on and result.findings and not result.failing:
            parts.append(f"none {'/'.join(sorted(result.fail_on))}, so not failed")
    line = "claudesec scan: " + ", ".join(parts)
    if stats.held_examples:
        # Counted aloud, so holding them back never reads as "nothing there".
        n = stats.held_examples
        line += (
            f"\n  held back: {n} name-based finding{'s' if n != 1 else ''} in tests, fixtures "
            'and docs (example values); scan.examples = "report" shows them'
        )
    if stats.skipped:
        # Never let a partial scan read as a whole one (issue 15): say what was not looked at.
        reasons = Counter(s.reason for s in stats.skipped)
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        line += (
            f"\n  not scanned: {len(stats.skipped)} file{'s' if len(stats.skipped) != 1 else ''}"
            f" ({detail}); list them with --show-skipped"
        )
    return line

"""``--dedup``: one finding per distinct secret, the other places it was found listed with it.

By default a scan reports a secret once per place it sits (file and line), because each copy
has to be removed from its file. A vendored SDK, a copied fixture or a generated client often
holds the same value in many files; asked with ``--dedup``, the report names each distinct
secret once (per rule) at its first place in path order, and lists the others
(``Finding.also_at``), as kingfisher does by default. Nothing is dropped: the summary counts
the copies (``duplicates``), and a baseline is still written from every place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from claudesec.scan.model import Finding


def one_per_secret(findings: Sequence[Finding]) -> tuple[list[Finding], int]:
    """The first finding of each (rule, secret) in path and line order, with the places of its
    copies in ``also_at``; and how many copies were folded into those findings."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: (f.path, f.line, f.column)):
        groups.setdefault((finding.rule_id, finding.secret), []).append(finding)
    kept = []
    for first, *copies in groups.values():
        places = tuple(f"{c.path}:{c.line}" for c in copies)
        kept.append(dataclasses.replace(first, also_at=places) if places else first)
    return kept, len(findings) - len(kept)

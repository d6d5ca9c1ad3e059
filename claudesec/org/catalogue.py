"""The one catalogue of organisation posture checks, as data (like the detector catalogue).

Each area keeps its checks in a small module under :mod:`claudesec.org.checks`; this table
joins them in report order. ``docs/org-check.md`` is generated from it
(``scripts/update-org-docs``), and a test keeps ids unique and every field filled.
"""

from __future__ import annotations

from collections.abc import Mapping

from claudesec.org.checks import claude_code, identity, keys, members, platform
from claudesec.org.rules import Check

CHECKS: tuple[Check, ...] = (
    *keys.CHECKS,
    *members.CHECKS,
    *platform.CHECKS,
    *identity.CHECKS,
    *claude_code.CHECKS,
)

CHECKS_BY_ID: Mapping[str, Check] = {check.id: check for check in CHECKS}

AREAS: tuple[str, ...] = tuple(dict.fromkeys(check.area for check in CHECKS))

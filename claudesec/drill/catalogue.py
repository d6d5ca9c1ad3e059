"""Every drill claudesec ships, in the order reports list them, and how a run selects them."""

from __future__ import annotations

from collections.abc import Sequence

from claudesec.drill.drills.audit import (
    AuditTamper,
    BadTokens,
    DlpPrompt,
    FailClosed,
    ForbiddenModel,
)
from claudesec.drill.drills.federation import (
    BroadRule,
    LeakedTokenExpiry,
    ProxyRefresh,
    ReplayedAssertion,
    UntrustedIssuer,
)
from claudesec.drill.drills.keys import RevokedKey401, RotationCrashResume, ScopeUnlistedPrincipal
from claudesec.drill.drills.leak import LeakToDeadKey
from claudesec.drill.drills.live import (
    NoKeyPastMaxAge,
    NoUnmanagedActiveKey,
    PolicyDeniesUnlisted,
    RotatedOutRejected,
)
from claudesec.drill.drills.org import LiveOrgPosture, OrgPostureCritical
from claudesec.drill.drills.proxy import ProxyIdentity
from claudesec.drill.drills.scan import (
    DotenvLeak,
    HistoryScan,
    MinifiedJsLeak,
    NotebookLeak,
    PlaceholderQuiet,
    PreCommitHook,
    UrlLeak,
)
from claudesec.drill.drills.sweep import NoCanaryInClear
from claudesec.drill.interface import Drill
from claudesec.errors import UsageError, did_you_mean

TAGS = ("offline", "live")

DRILLS: tuple[type[Drill], ...] = (
    PreCommitHook,
    HistoryScan,
    NotebookLeak,
    DotenvLeak,
    MinifiedJsLeak,
    UrlLeak,
    PlaceholderQuiet,
    LeakToDeadKey,
    RevokedKey401,
    RotationCrashResume,
    ScopeUnlistedPrincipal,
    ForbiddenModel,
    BadTokens,
    DlpPrompt,
    ProxyIdentity,
    BroadRule,
    ReplayedAssertion,
    UntrustedIssuer,
    LeakedTokenExpiry,
    ProxyRefresh,
    AuditTamper,
    FailClosed,
    OrgPostureCritical,
    NoCanaryInClear,
    RotatedOutRejected,
    PolicyDeniesUnlisted,
    NoKeyPastMaxAge,
    NoUnmanagedActiveKey,
    LiveOrgPosture,
)

DRILLS_BY_NAME: dict[str, type[Drill]] = {d.name: d for d in DRILLS}


def select(names: Sequence[str] = (), tags: Sequence[str] = ()) -> list[type[Drill]]:
    """The drills named (all when none is), narrowed to those carrying any of ``tags``."""
    for tag in tags:
        if tag not in TAGS:
            raise UsageError(f"unknown tag {tag!r}", hint=f"choose {' or '.join(TAGS)}")
    chosen: list[type[Drill]] = []
    for name in names:
        drill = DRILLS_BY_NAME.get(name)
        if drill is None:
            raise UsageError(
                f"unknown drill {name!r}",
                hint=did_you_mean(name, DRILLS_BY_NAME) or "`claudesec drill list` names them",
            )
        if drill not in chosen:
            chosen.append(drill)
    pool = chosen or list(DRILLS)
    if tags:
        pool = [d for d in pool if set(d.tags) & set(tags)]
    # A final drill sweeps what the others produced: it always runs last.
    return [d for d in pool if not d.final] + [d for d in pool if d.final]

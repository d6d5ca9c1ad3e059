"""The federation lint catalogue, as data: each misconfiguration with its id, severity, why it
is dangerous and the fix. :mod:`.lint` holds one check per entry; docs/federation.md's table is
generated from this tuple (a test keeps it fresh), so the threat model is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}

# Thresholds, stated once (the docs table quotes them).
MAX_JWT_LIFETIME_THRESHOLD_S = 3600  # CI tokens live minutes, Kubernetes projected ones <= 1 h
TOKEN_LIFETIME_THRESHOLD_S = 3600  # the SDK re-exchanges before expiry: short costs nothing


@dataclass(frozen=True)
class LintRule:
    id: str
    severity: Severity
    title: str
    why: str
    fix: str


CATALOGUE: tuple[LintRule, ...] = (
    LintRule(
        "FED001",
        "critical",
        "Subject matches more than one repository, project or workload",
        "A prefix such as `repo:acme/*`, `repo:acme/` + `*` or `system:serviceaccount:prod:*` "
        "lets every repository of the owner (or every service account of the namespace) mint "
        "tokens, including ones created later by anyone with repository-create rights.",
        'Pin one repository (`repository = "acme/api"`, or the claim `repository`/'
        "`project_path`) and one workload (`namespace` + `service_account_name`).",
    ),
    LintRule(
        "FED002",
        "high",
        "CI rule matches any branch, tag or pull request",
        "Without a ref or environment pin (`repo:acme/api:*`), any branch pushed to the "
        "repository, or any workflow a contributor edits on a feature branch, can mint the "
        "same production token as the main branch.",
        'Pin `environment` (with protection rules) and/or `ref = "refs/heads/main"`.',
    ),
    LintRule(
        "FED003",
        "high",
        "Rule accepts pull-request tokens",
        "`repo:OWNER/REPO:pull_request` subjects (and `event_name = pull_request[_target]`, "
        "GitLab `merge_request_event`) are minted for code that is not reviewed yet, and for "
        "pull requests from forks when the workflow allows it.",
        "Match a protected ref or environment instead; never grant Anthropic access to PR jobs.",
    ),
    LintRule(
        "FED004",
        "high",
        "Rule relies on audience alone",
        "The audience says who a token is *for*, not who holds it: every workload of the issuer "
        "that can request that audience matches. (The API now refuses new ones; older or "
        "Console-made rules may remain.)",
        "Add a subject, exact claims or a CEL condition that names the workload.",
    ),
    LintRule(
        "FED005",
        "low",
        "CI rule pinned to a ref but not to an environment",
        "Any workflow file on the branch can mint; a deployment environment adds required "
        "reviewers and branch policies the ref alone does not.",
        'Add `environment = "production"` (GitHub) or `environment` / `ref_protected = true` '
        "(GitLab).",
    ),
    LintRule(
        "FED006",
        "medium",
        "Issuer does not enforce single use (check_jti off)",
        "A captured assertion (CI log, proxy, crash dump) can be replayed until it expires "
        "and mint a fresh token each time.",
        "Set `check_jti = true` on the issuer.",
    ),
    LintRule(
        "FED007",
        "medium",
        f"Issuer accepts assertions living longer than {MAX_JWT_LIFETIME_THRESHOLD_S} s",
        "`max_jwt_lifetime_seconds` bounds how long a stolen workload token stays exchangeable; "
        "CI tokens live minutes and Kubernetes projected tokens at most an hour.",
        f"Set `max_jwt_lifetime_seconds` to {MAX_JWT_LIFETIME_THRESHOLD_S} or less (600 for CI).",
    ),
    LintRule(
        "FED008",
        "medium",
        f"Minted tokens live longer than {TOKEN_LIFETIME_THRESHOLD_S} s",
        "A leaked access token works until it expires; the SDK re-exchanges before expiry, so "
        "a long lifetime buys nothing but exposure.",
        f"Set `token_lifetime_seconds` to {TOKEN_LIFETIME_THRESHOLD_S} or less.",
    ),
    LintRule(
        "FED009",
        "high",
        "Rule applies to all workspaces",
        "The workload may mint into every workspace, including ones created later for other "
        "teams or data, wherever its service account is a member.",
        'List the workspaces the workload needs (`workspace = "prod"`).',
    ),
    LintRule(
        "FED010",
        "medium",
        "Scope broader than workspace:inference",
        "`workspace:developer` lets the workload manage files, batches and other workspace "
        "resources, not just call models.",
        "Grant `workspace:inference` unless the workload really manages the workspace.",
    ),
    LintRule(
        "FED011",
        "critical",
        "Rule grants org:admin",
        "A workload token with `org:admin` can create federation rules and service accounts: "
        "whoever controls that workload controls the organisation's identity plane.",
        "Archive the rule in the Console; run administration from people's own logins.",
    ),
    LintRule(
        "FED012",
        "critical",
        "Issuer or JWKS over plain HTTP",
        "Keys fetched over cleartext can be swapped in transit; an attacker on the path then "
        "signs any token they like.",
        "Use the issuer's https:// URL.",
    ),
    LintRule(
        "FED013",
        "medium",
        "Issuer trusts an inline JWKS",
        "Inline keys are never refreshed: after the IdP rotates, exchanges fail, and a key the "
        "IdP retired (perhaps because it leaked) stays trusted until someone edits the issuer.",
        "Use discovery (the default) or a JWKS URL.",
    ),
    LintRule(
        "FED014",
        "medium",
        "Service account holds more workspace access than its rules need",
        "Memberships (or roles above workspace_user) that no rule mints into are standing "
        "access: a new rule, or a Console edit, silently inherits them.",
        "Remove the memberships no rule uses; keep workspace_user where rules grant only "
        "inference.",
    ),
    LintRule(
        "FED015",
        "medium",
        "Rule points at an archived issuer or service account",
        "The rule is dead but looks live: it hides the real configuration, and a replacement "
        "issuer or account re-created under the same name is easy to bind by mistake.",
        "Archive the rule, or re-point it at the live issuer/service account.",
    ),
)

BY_ID: dict[str, LintRule] = {rule.id: rule for rule in CATALOGUE}


def catalogue_markdown() -> str:
    """The docs table of every lint rule (docs/federation.md embeds it; a test keeps it fresh)."""
    lines = ["| id | severity | what | why it is dangerous | fix |", "|---|---|---|---|---|"]
    for rule in CATALOGUE:
        cells = [rule.id, rule.severity, rule.title, rule.why, rule.fix]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"

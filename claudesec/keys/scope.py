"""Least-privilege resource policies for the managed secrets: build, lint, diff, apply.

Each managed secret gets: its named readers (read only, optionally only through given VPC
endpoints or VPCs), the rotator (read and rotate), break-glass roles (everything), and an
explicit deny for every other principal. The pool secret has no readers at all.

moto neither enforces nor validates resource policies, so the linter here is the check, and
it is tested on its own against hand-written bad policies.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from claudesec.errors import UsageError

if TYPE_CHECKING:
    from claudesec.config import KeysConfig
    from claudesec.stores.secretsmanager import SecretsManagerStore

READ_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
ROTATE_ACTIONS = (
    *READ_ACTIONS,
    "secretsmanager:ListSecretVersionIds",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:TagResource",
)
WRITE_PREFIXES = (
    "secretsmanager:Put",
    "secretsmanager:Update",
    "secretsmanager:Delete",
    "secretsmanager:Restore",
    "secretsmanager:Rotate",
    "secretsmanager:Tag",
    "secretsmanager:Untag",
    "secretsmanager:Cancel",
    "secretsmanager:Replicate",
    "secretsmanager:RemoveRegions",
    "secretsmanager:StopReplication",
)
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ScopeSpec:
    readers: tuple[str, ...]
    rotator: str
    break_glass: tuple[str, ...]
    source_vpce: tuple[str, ...] = ()
    source_vpc: tuple[str, ...] = ()

    @classmethod
    def for_secret(cls, keys: KeysConfig, name: str, *, pool: bool = False) -> ScopeSpec:
        readers: tuple[str, ...] = ()
        if not pool:
            readers = (*keys.scope_readers, *keys.scope_secret_readers.get(name, ()))
        return cls(
            readers=tuple(dict.fromkeys(readers)),
            rotator=keys.scope_rotator,
            break_glass=tuple(keys.scope_break_glass),
            source_vpce=tuple(keys.scope_source_vpce),
            source_vpc=tuple(keys.scope_source_vpc),
        )


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "message": self.message}


@dataclass(frozen=True)
class PlanEntry:
    secret: str
    desired: str
    applied: str | None
    findings: tuple[Finding, ...]
    spec: ScopeSpec

    @property
    def changed(self) -> bool:
        return self.applied is None or normalise(self.applied) != normalise(self.desired)

    def diff(self) -> str:
        before = normalise(self.applied).splitlines() if self.applied else []
        after = normalise(self.desired).splitlines()
        return "\n".join(
            difflib.unified_diff(
                before, after, f"{self.secret} (applied)", f"{self.secret} (planned)", lineterm=""
            )
        )


def build_policy(spec: ScopeSpec) -> dict[str, Any]:
    """The resource policy for one secret."""
    if not spec.rotator:
        raise UsageError(
            "keys.scope_rotator is not set",
            hint="name the IAM role that runs `claudesec keys rotate`",
        )
    statements: list[dict[str, Any]] = []
    if spec.readers:
        read: dict[str, Any] = {
            "Sid": "ClaudesecReaders",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(spec.readers)},
            "Action": list(READ_ACTIONS),
            "Resource": "*",
        }
        network = _network_condition(spec, "StringEquals")
        if network:
            read["Condition"] = network
        statements.append(read)
    statements.append(
        {
            "Sid": "ClaudesecRotator",
            "Effect": "Allow",
            "Principal": {"AWS": spec.rotator},
            "Action": list(ROTATE_ACTIONS),
            "Resource": "*",
        }
    )
    if spec.break_glass:
        statements.append(
            {
                "Sid": "ClaudesecBreakGlass",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(spec.break_glass)},
                "Action": "secretsmanager:*",
                "Resource": "*",
            }
        )
    allowed = sorted({*spec.readers, spec.rotator, *spec.break_glass})
    statements.append(
        {
            "Sid": "ClaudesecDenyEveryoneElse",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "secretsmanager:*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalArn": allowed}},
        }
    )
    if spec.readers and (spec.source_vpce or spec.source_vpc):
        # The allow above is conditional, but an identity policy could still grant a reader
        # access from anywhere: deny reads off the private network outright.
        statements.append(
            {
                "Sid": "ClaudesecDenyReadsOffNetwork",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {
                    **_network_condition(spec, "StringNotEquals"),
                    "StringNotEqualsIfExists": {
                        "aws:PrincipalArn": sorted({spec.rotator, *spec.break_glass})
                    },
                },
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _network_condition(spec: ScopeSpec, operator: str) -> dict[str, Any]:
    values: dict[str, list[str]] = {}
    if spec.source_vpce:
        values["aws:SourceVpce"] = sorted(spec.source_vpce)
    if spec.source_vpc:
        values["aws:SourceVpc"] = sorted(spec.source_vpc)
    return {operator: values} if values else {}


def normalise(policy: str | Mapping[str, Any]) -> str:
    data = json.loads(policy) if isinstance(policy, str) else policy
    return json.dumps(data, indent=2, sort_keys=True)


# --------------------------------------------------------------------------- lint


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        found: list[str] = []
        for value in principal.values():
            found.extend(str(v) for v in _as_list(value))
        return found
    return [str(p) for p in _as_list(principal)]


def _exempted_principals(statement: Mapping[str, Any]) -> set[str]:
    """Principal ARNs a deny-everyone statement leaves out through its conditions."""
    exempt: set[str] = set()
    for operator, clauses in (statement.get("Condition") or {}).items():
        if not str(operator).startswith(
            ("StringNotEquals", "ArnNotEquals", "StringNotLike", "ArnNotLike")
        ):
            continue
        if isinstance(clauses, Mapping):
            for key, values in clauses.items():
                if str(key).lower() == "aws:principalarn":
                    exempt.update(str(v) for v in _as_list(values))
    return exempt


def _is_write(action: str) -> bool:
    return action in ("*", "secretsmanager:*") or action.startswith(WRITE_PREFIXES)


def lint_policy(
    policy: str | Mapping[str, Any],
    *,
    readers: Iterable[str] = (),
    break_glass: Iterable[str] = (),
    rotator: str = "",
) -> list[Finding]:
    """Problems in a secret's resource policy: public or wildcard principals, wildcard
    actions, no explicit deny for everyone else, readers that can write.

    Given the rotator too, the linter knows every principal the config names, and also flags
    any other principal that an Allow grants or that the deny-everyone-else exempts.
    """
    try:
        data = json.loads(policy) if isinstance(policy, str) else dict(policy)
    except ValueError as exc:
        return [Finding("invalid-json", "error", f"the policy is not JSON: {exc}")]
    statements = _as_list(data.get("Statement"))
    readers_set, glass = set(readers), set(break_glass)
    expected = {*readers_set, *glass, rotator} if rotator else None
    findings: list[Finding] = []
    has_deny = False
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping):
            findings.append(
                Finding("invalid-statement", "error", f"statement {index} is not an object")
            )
            continue
        sid = statement.get("Sid") or f"#{index}"
        effect = statement.get("Effect")
        principals = _principals(statement)
        actions = [str(a) for a in _as_list(statement.get("Action"))]
        if effect == "Deny":
            if "*" in principals:
                has_deny = True
                exempt = _exempted_principals(statement)
                if expected is not None and exempt - expected:
                    findings.append(
                        Finding(
                            "unlisted-exemption",
                            "error",
                            f"{sid}: exempts principals the config does not name: "
                            f"{', '.join(sorted(exempt - expected))}",
                        )
                    )
            continue
        if expected is not None:
            unlisted = sorted(p for p in principals if p != "*" and p not in expected)
            if unlisted:
                findings.append(
                    Finding(
                        "unlisted-principal",
                        "error",
                        f"{sid}: allows principals the config does not name: {', '.join(unlisted)}",
                    )
                )
        if "NotPrincipal" in statement:
            findings.append(
                Finding(
                    "not-principal-allow",
                    "error",
                    f"{sid}: Allow with NotPrincipal grants everyone not listed",
                )
            )
        if "NotAction" in statement:
            findings.append(
                Finding(
                    "not-action-allow",
                    "error",
                    f"{sid}: Allow with NotAction grants every other action",
                )
            )
        if "*" in principals:
            findings.append(
                Finding("public-principal", "error", f'{sid}: allows Principal "*" (anyone)')
            )
        elif any("*" in p for p in principals):
            findings.append(
                Finding("wildcard-principal", "error", f"{sid}: a principal contains a wildcard")
            )
        if any(a in ("*", "secretsmanager:*") for a in actions) and not set(principals) <= glass:
            findings.append(
                Finding(
                    "wildcard-action",
                    "error",
                    f"{sid}: grants every action to non-break-glass principals",
                )
            )
        elif any(a.endswith("*") for a in actions) and not set(principals) <= glass:
            findings.append(Finding("wildcard-action", "warning", f"{sid}: an action ends in *"))
        writes = [a for a in actions if _is_write(a)]
        leaky = sorted(set(principals) & readers_set)
        if writes and leaky:
            findings.append(
                Finding(
                    "reader-can-write",
                    "error",
                    f"{sid}: readers {', '.join(leaky)} may {', '.join(sorted(writes))}",
                )
            )
    if not has_deny:
        findings.append(
            Finding(
                "missing-deny",
                "error",
                "no explicit Deny for everyone else: any IAM policy in the account can grant "
                "access",
            )
        )
    return findings


# --------------------------------------------------------------------------- plan, apply


def plan(
    store: SecretsManagerStore, keys: KeysConfig, secrets: Sequence[str], short: Mapping[str, str]
) -> list[PlanEntry]:
    """The desired policy of each secret beside the one applied now, with lint findings."""
    entries: list[PlanEntry] = []
    for secret in secrets:
        is_pool = secret == keys.pool_secret
        spec = ScopeSpec.for_secret(keys, short.get(secret, secret), pool=is_pool)
        desired = json.dumps(build_policy(spec), sort_keys=True)
        findings = lint_policy(
            desired, readers=spec.readers, break_glass=spec.break_glass, rotator=spec.rotator
        )
        entries.append(
            PlanEntry(
                secret=secret,
                desired=desired,
                applied=store.get_policy(secret),
                findings=tuple(findings),
                spec=spec,
            )
        )
    return entries


def apply(store: SecretsManagerStore, entries: Sequence[PlanEntry]) -> list[str]:
    """Put each changed policy (with ``BlockPublicPolicy``); refuses any with lint errors."""
    bad = [e.secret for e in entries if any(f.severity == "error" for f in e.findings)]
    if bad:
        raise UsageError(
            f"refusing to apply policies with lint errors: {', '.join(bad)}",
            hint="`claudesec keys scope lint` shows them",
        )
    applied: list[str] = []
    for entry in entries:
        if entry.changed:
            store.put_policy(entry.secret, entry.desired)
            applied.append(entry.secret)
    return applied

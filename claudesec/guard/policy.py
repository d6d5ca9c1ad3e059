"""The role policy, deny by default: may this identity make this Claude request now?

Decisions are computed from plain request data (the Messages API JSON body as a dict), never
from SDK objects, so the audited client and the network proxy share one implementation, and
this module never imports ``anthropic``.

Checks, in order: the user has a role and may use the role asked for; the request is well
formed; the model matches one of the role's globs; ``max_tokens`` and the estimated input size
are within the role's caps; tools are declared only if the role allows them; the time is within
the role's UTC hours; the user's token budgets for the last minute and day are not spent.

Roles come from ``policy.users`` first: a user listed there has exactly that role, and asking
for another is denied (a caller cannot pick a stronger role than assigned). A user not listed
there may still use the roles mapped from a verified OIDC token's groups, or the role a proxy
token was issued for; a trusted (plain) user id that is not listed is unknown and denied.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from claudesec.errors import ConfigError, UsageError
from claudesec.guard.budget import DAY_S, MINUTE_S, BudgetLedger, InMemoryBudgetLedger

if TYPE_CHECKING:
    from claudesec.config import Config, PolicyConfig, RoleConfig
    from claudesec.guard.identity import Identity

CHARS_PER_TOKEN = 4
# A fixed charge per image or binary document: their token cost depends on pixels and pages,
# which are not cheap to know here; ~1600 is what a ~1 megapixel image costs.
BINARY_BLOCK_TOKENS = 1600
_MAX_DEPTH = 32

_HOURS_RE = re.compile(r"^\s*(\d{1,2})\s*-\s*(\d{1,2})\s*$")
_GLOB_CHARS_RE = re.compile(r"^[A-Za-z0-9._:@/*?\[\]!-]+$")
# Identity sources whose verified credential carries roles (a plain user id carries none).
_CREDENTIAL_SOURCES = frozenset({"oidc", "proxy_token"})
_GRANTED_BY = {  # (what grants, "does not grant", "grants") in each source's grammar
    "oidc": ("token groups", "do not grant", "grant"),
    "proxy_token": ("proxy token", "does not grant", "grants"),
}


class Reason(StrEnum):
    """Machine-readable reason codes of a decision (recorded with every denial)."""

    ALLOWED = "allowed"
    UNKNOWN_USER = "unknown_user"
    ROLE_NOT_ASSIGNED = "role_not_assigned"
    UNKNOWN_ROLE = "unknown_role"
    MALFORMED_REQUEST = "malformed_request"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    MAX_TOKENS_EXCEEDED = "max_tokens_exceeded"
    INPUT_TOO_LARGE = "input_too_large"
    TOOLS_NOT_ALLOWED = "tools_not_allowed"
    OUTSIDE_HOURS = "outside_hours"
    MINUTE_BUDGET_EXCEEDED = "minute_budget_exceeded"
    DAY_BUDGET_EXCEEDED = "day_budget_exceeded"


@dataclass(frozen=True, slots=True)
class Check:
    """One check that ran: its name, whether it passed, and why (for ``policy check``)."""

    name: str
    passed: bool
    detail: str
    reason: Reason = Reason.ALLOWED  # the code a failure of this check is reported under


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The outcome for one request: the first failed check decides the reason."""

    allowed: bool
    reason: Reason
    message: str
    user: str
    role: str
    checks: tuple[Check, ...]
    input_tokens: int = 0
    # The role's max_tokens when it clamps (max_tokens_mode = "clamp"), else 0: the request
    # goes out with max_tokens lowered to it (see clamp_max_tokens).
    max_tokens_cap: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason.value,
            "message": self.message,
            "user": self.user,
            "role": self.role,
            "input_tokens": self.input_tokens,
            "checks": [
                {"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks
            ],
        }


class MalformedRequest(UsageError):
    """A request body policy cannot judge (no model, max_tokens not a number, ...)."""


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """What policy needs to know about one request.

    ``max_tokens`` is None only when the caller does not know it (``policy check`` without
    ``--max-tokens``); a request body always carries it.
    """

    model: str
    max_tokens: int | None = None
    input_tokens: int = 0
    tools: bool = False

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PolicyRequest:
        """Read a Messages API request body (the JSON sent to ``/v1/messages``)."""
        if not isinstance(body, Mapping):
            raise MalformedRequest("the request body is not a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise MalformedRequest("the request has no model")
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise MalformedRequest("the request's max_tokens is not a positive integer")
        messages = body.get("messages", [])
        if not isinstance(messages, list):
            raise MalformedRequest("the request's messages is not a list")
        # Server-side MCP connectors are tools by another name.
        tools = bool(body.get("tools")) or bool(body.get("mcp_servers"))
        return cls(
            model=model,
            max_tokens=max_tokens,
            input_tokens=estimate_input_tokens(body),
            tools=tools,
        )


def estimate_input_tokens(body: Mapping[str, Any]) -> int:
    """A cheap upper-bound-ish estimate of a request's input tokens: characters / 4.

    Counts the system prompt, every text-bearing part of every message (text, thinking,
    tool inputs and results) and the tool definitions, which the API bills as input too.
    Images and binary documents add a fixed :data:`BINARY_BLOCK_TOKENS` each. Use the API's
    ``count_tokens`` when an exact figure matters.
    """
    chars = 0
    binary = 0

    def walk(value: Any, depth: int) -> None:
        nonlocal chars, binary
        if depth > _MAX_DEPTH:
            return
        if isinstance(value, str):
            chars += len(value)
        elif isinstance(value, list):
            for item in value:
                walk(item, depth + 1)
        elif isinstance(value, Mapping):
            kind = value.get("type")
            source = value.get("source")
            if kind in ("image", "document") and isinstance(source, Mapping):
                if source.get("type") == "text":
                    walk(source.get("data"), depth + 1)
                else:
                    binary += 1
                for key in ("title", "context"):
                    walk(value.get(key), depth + 1)
                return
            if kind == "tool_use":
                chars += len(_dumps(value.get("input"))) + len(str(value.get("name", "")))
                return
            if kind in ("redacted_thinking",):
                return  # opaque, and not billed as text
            for key in ("text", "thinking", "content"):
                walk(value.get(key), depth + 1)

    walk(body.get("system"), 0)
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, Mapping):
                walk(message.get("content"), 0)
    tools = body.get("tools")
    if isinstance(tools, list):
        chars += sum(len(_dumps(tool)) for tool in tools)
    return -(-chars // CHARS_PER_TOKEN) + binary * BINARY_BLOCK_TOKENS


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(value)


# --------------------------------------------------------------------------- config


def parse_hours(spec: str) -> tuple[int, int] | None:
    """``"08-19"`` -> ``(8, 19)``: allowed from 08:00 up to (not including) 19:00 UTC.

    ``"22-06"`` wraps past midnight; ``""`` means any time. Raises ValueError when invalid.
    """
    if not spec.strip():
        return None
    match = _HOURS_RE.match(spec)
    if not match:
        raise ValueError("expected 'HH-HH', e.g. '08-19' or '22-06'")
    start, end = int(match.group(1)), int(match.group(2))
    if not (0 <= start <= 23 and 0 <= end <= 24):
        raise ValueError("hours are 00-23 (an end of 24 means midnight)")
    if start == end:
        raise ValueError("start and end are the same hour; leave it empty to allow any time")
    return start, end


def hour_allowed(window: tuple[int, int] | None, hour: int) -> bool:
    if window is None:
        return True
    start, end = window
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end  # wraps past midnight


def _check_glob(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable model glob, or None."""
    if not pattern or not _GLOB_CHARS_RE.match(pattern):
        return "model globs use letters, digits and . _ - : @ / * ? [ ] !"
    depth = 0
    for char in pattern:
        if char == "[":
            if depth:
                return "nested '[' in a model glob"
            depth = 1
        elif char == "]" and depth:
            depth = 0
    if depth:
        return "unclosed '[' in a model glob"
    return None


def validate_policy(
    policy: PolicyConfig, group_roles: Mapping[str, str] | None = None, *, path: str | None = None
) -> None:
    """Raise :class:`ConfigError` naming the key for the first policy mistake found."""

    def fail(message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, path=path, hint=hint)

    defined = ", ".join(sorted(policy.roles)) or "none"
    for name, role in policy.roles.items():
        key = f"policy.roles.{name}"
        if role.max_tokens <= 0:
            raise fail(f"{key}.max_tokens must be > 0, got {role.max_tokens}")
        if role.max_input_tokens <= 0:
            raise fail(f"{key}.max_input_tokens must be > 0, got {role.max_input_tokens}")
        for budget in ("tokens_per_minute", "tokens_per_day"):
            if getattr(role, budget) < 0:
                raise fail(f"{key}.{budget} must be >= 0 (0 = unlimited)")
        for pattern in role.models:
            problem = _check_glob(pattern)
            if problem:
                raise fail(f"{key}.models: invalid glob {pattern!r}: {problem}")
        try:
            parse_hours(role.allowed_hours)
        except ValueError as exc:
            raise fail(f"{key}.allowed_hours: invalid value {role.allowed_hours!r}: {exc}") from exc
    for user, role_name in policy.users.items():
        if role_name not in policy.roles:
            raise fail(
                f"policy.users.{user} maps to undefined role {role_name!r}",
                hint=f"defined roles: {defined}",
            )
    for group, role_name in (group_roles or {}).items():
        if role_name not in policy.roles:
            raise fail(
                f"identity.group_roles.{group} maps to undefined role {role_name!r}",
                hint=f"defined roles: {defined}",
            )


# --------------------------------------------------------------------------- evaluation


_MODEL_CHECK_CACHE = 64  # per role: the few models a deployment calls, not every typo


class _Role:
    """A role's config with what every evaluation would otherwise recompute.

    Checks are immutable, so the ones that depend only on the role (and on a request's model or
    tools flag) are built once and shared by every decision; their text stays the same.
    """

    __slots__ = ("config", "hours", "match_model", "model_checks", "name", "static")

    def __init__(self, name: str, config: RoleConfig) -> None:
        self.name = name
        self.config = config
        self.hours = parse_hours(config.allowed_hours)
        # One regex for all globs, the same translation fnmatchcase uses for each.
        self.match_model: Callable[[str], object] | None = (
            re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in config.models)).match
            if config.models
            else None
        )
        self.model_checks: dict[str, Check] = {}
        self.static = {
            "tools_used": Check(
                "tools",
                config.tools_allowed,
                "tools declared"
                + (", tools allowed" if config.tools_allowed else ", tools not allowed"),
                Reason.TOOLS_NOT_ALLOWED,
            ),
            "no_tools": Check(
                "tools",
                True,
                "no tools declared"
                + (", tools allowed" if config.tools_allowed else ", tools not allowed"),
                Reason.TOOLS_NOT_ALLOWED,
            ),
            "any_time": Check("hours", True, "any time", Reason.OUTSIDE_HOURS),
            "budget_minute": Check("budget_minute", True, "unlimited"),
            "budget_day": Check("budget_day", True, "unlimited"),
        }

    def model_check(self, model: str) -> Check:
        check = self.model_checks.get(model)
        if check is not None:
            return check
        cfg = self.config
        allowed = self.match_model is not None and self.match_model(model) is not None
        check = Check(
            "model",
            allowed,
            f"{model!r} matches {', '.join(cfg.models)}"
            if allowed
            else f"{model!r} is not among the models of role {self.name!r} "
            f"({', '.join(cfg.models) or 'none'})",
            Reason.MODEL_NOT_ALLOWED,
        )
        if len(self.model_checks) < _MODEL_CHECK_CACHE:
            self.model_checks[model] = check
        return check


@dataclass
class Policy:
    """The effective policy plus the budget ledger and clock it is evaluated against.

    Build with :meth:`from_config` (which validates). Thread-safe as long as the ledger is.
    """

    config: PolicyConfig
    ledger: BudgetLedger = field(default_factory=InMemoryBudgetLedger)
    clock: Callable[[], float] = time.time
    _roles: dict[str, _Role] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._roles = {name: _Role(name, role) for name, role in self.config.roles.items()}
        self._assigned_checks: dict[tuple[str, str], Check] = {}

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        path: str | None = None,
        ledger: BudgetLedger | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Policy:
        """Validate ``config.policy`` (and ``identity.group_roles``) and build the policy."""
        validate_policy(config.policy, config.identity.group_roles, path=path)
        return cls(
            config=config.policy,
            ledger=ledger if ledger is not None else InMemoryBudgetLedger(),
            clock=clock or time.time,
        )

    # ----------------------------------------------------------------- decisions

    def evaluate(
        self,
        identity: Identity,
        request: PolicyRequest | Mapping[str, Any],
        *,
        role: str | None = None,
        now: float | None = None,
    ) -> PolicyDecision:
        """Decide one request. ``role`` is the role the caller asks for, if any.

        A user holding several roles (from token groups) and asking for none is allowed if
        any of them allows the request; the decision names that role.
        """
        when = self.clock() if now is None else now
        user = identity.user
        roles, identity_check = self._candidate_roles(identity, role)
        checks: list[Check] = [identity_check]
        if not identity_check.passed:
            return _decide(user, role or "", checks, 0)
        if isinstance(request, PolicyRequest):
            parsed = request
        else:
            try:
                parsed = PolicyRequest.from_body(request)
            except MalformedRequest as exc:
                checks.append(Check("request", False, exc.message, Reason.MALFORMED_REQUEST))
                return _decide(user, roles[0], checks, 0)
        first: PolicyDecision | None = None
        for name in roles:
            decision = self._evaluate_role(user, name, parsed, when, checks)
            if decision.allowed:
                return decision
            first = first or decision
        assert first is not None  # _candidate_roles never passes with no role
        return first

    def record_usage(self, user: str, tokens: int, *, now: float | None = None) -> None:
        """Charge a finished call's real usage (input + output tokens) to ``user``'s budgets."""
        self.ledger.charge(user, tokens, self.clock() if now is None else now)

    def _candidate_roles(
        self, identity: Identity, requested: str | None
    ) -> tuple[list[str], Check]:
        user = identity.user
        if not user:
            return [], Check("identity", False, "no user given", Reason.UNKNOWN_USER)
        assigned = self.config.users.get(user)
        if assigned is not None:
            if requested and requested != assigned:
                return [], Check(
                    "identity",
                    False,
                    f"{user} is assigned role {assigned!r}, not {requested!r}",
                    Reason.ROLE_NOT_ASSIGNED,
                )
            if assigned in self._roles:
                # Keyed by both names, so a changed assignment can never reuse the text.
                check = self._assigned_checks.get((user, assigned))
                if check is None:
                    check = Check(
                        "identity", True, f"{user} is assigned role {assigned!r} in policy.users"
                    )
                    self._assigned_checks[(user, assigned)] = check
                return [assigned], check
            candidates = [assigned]
            how = f"{user} is assigned role {assigned!r} in policy.users"
        elif identity.source in _CREDENTIAL_SOURCES and identity.roles:
            what, refuses, grants = _GRANTED_BY[identity.source]
            if requested and requested not in identity.roles:
                return [], Check(
                    "identity",
                    False,
                    f"{user}'s {what} {refuses} role {requested!r}",
                    Reason.ROLE_NOT_ASSIGNED,
                )
            candidates = [requested] if requested else list(identity.roles)
            how = f"{user}'s {what} {grants} {', '.join(map(repr, candidates))}"
        else:
            where = "policy.users" if identity.source == "trusted" else "policy.users or groups"
            return [], Check(
                "identity", False, f"{user} has no role in {where}", Reason.UNKNOWN_USER
            )
        defined = [c for c in candidates if c in self._roles]
        if not defined:
            return [], Check(
                "identity",
                False,
                f"role {candidates[0]!r} is not defined in policy.roles",
                Reason.UNKNOWN_ROLE,
            )
        return defined, Check("identity", True, how)

    def _evaluate_role(
        self,
        user: str,
        name: str,
        request: PolicyRequest,
        now: float,
        prior: Iterable[Check],
    ) -> PolicyDecision:
        role = self._roles[name]
        cfg = role.config
        checks = list(prior)

        checks.append(role.model_check(request.model))

        if request.max_tokens is None:
            checks.append(Check("max_tokens", True, f"not given (cap {cfg.max_tokens})"))
        else:
            within = request.max_tokens <= cfg.max_tokens
            clamps = not within and cfg.max_tokens_mode == "clamp"
            checks.append(
                Check(
                    "max_tokens",
                    within or clamps,
                    f"{request.max_tokens} requested, "
                    + (f"clamped to cap {cfg.max_tokens}" if clamps else f"cap {cfg.max_tokens}"),
                    Reason.MAX_TOKENS_EXCEEDED,
                )
            )

        checks.append(
            Check(
                "input_tokens",
                request.input_tokens <= cfg.max_input_tokens,
                f"~{request.input_tokens} estimated, cap {cfg.max_input_tokens}",
                Reason.INPUT_TOO_LARGE,
            )
        )

        static = role.static
        checks.append(static["tools_used"] if request.tools else static["no_tools"])

        if not cfg.allowed_hours:
            checks.append(static["any_time"])
        else:
            hour = time.gmtime(now).tm_hour
            checks.append(
                Check(
                    "hours",
                    hour_allowed(role.hours, hour),
                    f"{hour:02d}:xx UTC, allowed {cfg.allowed_hours}",
                    Reason.OUTSIDE_HOURS,
                )
            )

        for check_name, limit, window, reason in (
            ("budget_minute", cfg.tokens_per_minute, MINUTE_S, Reason.MINUTE_BUDGET_EXCEEDED),
            ("budget_day", cfg.tokens_per_day, DAY_S, Reason.DAY_BUDGET_EXCEEDED),
        ):
            if limit == 0:
                checks.append(static[check_name])
                continue
            used = self.ledger.used(user, window, now)
            # Output tokens are unknown until the call ends; they are charged afterwards and
            # count against the next request.
            projected = used + request.input_tokens
            checks.append(
                Check(
                    check_name,
                    projected <= limit,
                    f"{used} used + ~{request.input_tokens} requested of {limit}",
                    reason,
                )
            )
        decision = _decide(user, name, checks, request.input_tokens)
        if cfg.max_tokens_mode == "clamp":
            from dataclasses import replace

            return replace(decision, max_tokens_cap=cfg.max_tokens)
        return decision


def _decide(user: str, role: str, checks: list[Check], input_tokens: int) -> PolicyDecision:
    failed = next((c for c in checks if not c.passed), None)
    if failed is None:
        who = f"{user} as {role}"
        return PolicyDecision(
            True, Reason.ALLOWED, f"allowed: {who}", user, role, tuple(checks), input_tokens
        )
    return PolicyDecision(
        False,
        failed.reason,
        f"denied ({failed.reason.value}): {failed.detail}",
        user,
        role,
        tuple(checks),
        input_tokens,
    )


def clamp_max_tokens(body: Any, cap: int) -> tuple[Any, dict[str, int]]:
    """``body`` with every ``max_tokens`` over ``cap`` lowered to it, and what was lowered.

    A Messages body, or a batch whose ``requests[].params`` are each one. Extended thinking's
    ``budget_tokens`` must stay below ``max_tokens``, so it is lowered along with it. The
    original is not changed. The second value is ``{"requested": n, "cap": cap}`` with the
    largest ``max_tokens`` asked for, or empty when nothing was over the cap.
    """
    if cap <= 0 or not isinstance(body, Mapping):
        return body, {}
    largest = 0

    def clamp(params: Any) -> Any:
        nonlocal largest
        if not isinstance(params, Mapping):
            return params
        asked = params.get("max_tokens")
        if isinstance(asked, bool) or not isinstance(asked, int) or asked <= cap:
            return params
        largest = max(largest, asked)
        out = {**params, "max_tokens": cap}
        thinking = params.get("thinking")
        if isinstance(thinking, Mapping):
            budget = thinking.get("budget_tokens")
            if isinstance(budget, int) and not isinstance(budget, bool) and budget >= cap:
                out["thinking"] = {**thinking, "budget_tokens": max(1, cap - 1)}
        return out

    requests = body.get("requests")
    if isinstance(requests, list):
        sent: Any = {
            **body,
            "requests": [
                {**item, "params": clamp(item.get("params"))} if isinstance(item, Mapping) else item
                for item in requests
            ],
        }
    else:
        sent = clamp(body)
    if not largest:
        return body, {}
    return sent, {"requested": largest, "cap": cap}

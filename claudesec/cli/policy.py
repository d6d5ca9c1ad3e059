"""`claudesec policy`: Inspect and check the role policy of the audited client and proxy."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer

from claudesec.cli._common import TableOrJsonOption, load, table_or_json

if TYPE_CHECKING:
    from claudesec.config import LoadedConfig
    from claudesec.console import Console
    from claudesec.guard.identity import OidcVerifier
    from claudesec.guard.policy import Policy, PolicyDecision

app = typer.Typer(
    help="Inspect and check the role policy of the audited client and proxy.", no_args_is_help=True
)


@app.command("check")
def check(
    ctx: typer.Context,
    *,
    model: Annotated[str, typer.Option("--model", "-m", help="Model the request would use.")],
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="User id to check (a trusted back-end's user)."),
    ] = None,
    token_file: Annotated[
        str | None,
        typer.Option(
            "--token-file",
            help="Check the caller of this OIDC token instead ('-' reads stdin). The token is "
            "verified against identity.* first.",
            metavar="PATH",
        ),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option("--role", "-r", help="Role the caller asks for (must be assigned)."),
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="The request's max_tokens.")
    ] = None,
    input_tokens: Annotated[
        int, typer.Option("--input-tokens", min=0, help="Estimated prompt size in tokens.")
    ] = 0,
    tools: Annotated[bool, typer.Option("--tools", help="The request declares tools.")] = False,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> int:
    """Explain whether a caller may make this request: every check, pass or fail.

    Exits 0 when allowed, 1 when denied (or the token is rejected), 2 when the policy config
    is invalid, 3 when the IdP cannot be reached. Budgets are checked against an empty ledger
    (no usage recorded by this process).
    """
    from claudesec.console import get_console
    from claudesec.errors import UsageError
    from claudesec.guard.identity import resolve_identity
    from claudesec.guard.policy import PolicyRequest

    if output_format not in ("text", "json"):
        raise UsageError(f"unknown format {output_format!r}", hint="use text or json")
    if not user and not token_file:
        raise UsageError("give --user or --token-file")
    loaded = load(ctx)
    policy = _policy(loaded)
    if token_file:
        identity = resolve_identity(
            user=user, token=_read_token(token_file), verifier=_verifier(loaded)
        )
    else:
        identity = resolve_identity(user=user, policy=loaded.config.policy)
    request = PolicyRequest(
        model=model, max_tokens=max_tokens, input_tokens=input_tokens, tools=tools
    )
    decision = policy.evaluate(identity, request, role=role)
    console = get_console()
    if output_format == "json":
        console.json(decision.to_dict())
    else:
        _explain(console, decision)
    return 0 if decision.allowed else 1


@app.command("show")
def show(
    ctx: typer.Context,
    output_format: TableOrJsonOption = None,
) -> int:
    """Print the effective policy: roles, users and identity settings (secrets redacted)."""
    from claudesec.console import get_console

    loaded = load(ctx)
    _policy(loaded)  # refuse to present a policy that would not load
    if loaded.config.identity.issuer:
        from claudesec.guard.identity import validate_identity_config

        validate_identity_config(
            loaded.config.identity, path=str(loaded.path) if loaded.path else None
        )
    console = get_console()
    fmt = table_or_json(console, output_format)
    data = _effective(loaded)
    if fmt == "json":
        console.json(data)
        return 0
    console.info(f"config file: {loaded.path or '(none: embedded defaults)'}")
    role_columns = (
        "role",
        "models",
        "max_tokens",
        "max_input_tokens",
        "tools",
        "tokens/min",
        "tokens/day",
        "hours (UTC)",
        "dlp",
    )
    console.table(
        role_columns,
        (
            (
                name,
                ", ".join(r["models"]) or "(none: all denied)",
                r["max_tokens"],
                r["max_input_tokens"],
                "yes" if r["tools_allowed"] else "no",
                r["tokens_per_minute"] or "unlimited",
                r["tokens_per_day"] or "unlimited",
                r["allowed_hours"] or "any",
                r["dlp"],
            )
            for name, r in data["roles"].items()
        ),
        title="roles",
    )
    console.out()
    console.table(("user", "role"), sorted(data["users"].items()), title="users")
    console.out()
    console.table(
        ("identity setting", "value"),
        ((k, _text(v)) for k, v in data["identity"].items()),
        title="identity",
    )
    return 0


# --------------------------------------------------------------------------- helpers


def _policy(loaded: LoadedConfig) -> Policy:
    from claudesec.guard.policy import Policy

    return Policy.from_config(loaded.config, path=str(loaded.path) if loaded.path else None)


def _verifier(loaded: LoadedConfig) -> OidcVerifier:
    from claudesec.guard.identity import OidcVerifier, validate_identity_config

    validate_identity_config(loaded.config.identity, path=str(loaded.path) if loaded.path else None)
    return OidcVerifier(loaded.config.identity)


def _read_token(source: str) -> str:
    import sys
    from pathlib import Path

    from claudesec.errors import UsageError

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read token file {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        # The decode error would quote the bytes, and they are a credential.
        raise UsageError(f"token file {source} is not UTF-8 text") from None
    return text.strip()


def _explain(console: Console, decision: PolicyDecision) -> None:
    who = f"{decision.user} as {decision.role}" if decision.role else decision.user
    if decision.allowed:
        console.styled(f"ALLOWED {who}", "bold green")
    else:
        console.styled(f"DENIED {who} ({decision.reason.value})", "bold red")
    width = max(len(c.name) for c in decision.checks)
    for item in decision.checks:
        mark = "pass" if item.passed else "FAIL"
        console.styled(
            f"  {mark}  {item.name.ljust(width)}  {item.detail}", "green" if item.passed else "red"
        )


def _effective(loaded: LoadedConfig) -> dict[str, Any]:
    config = loaded.config
    return {
        "file": str(loaded.path) if loaded.path else None,
        "roles": {
            name: _safe(dataclasses.asdict(role), _secret_fields(role))
            for name, role in config.policy.roles.items()
        },
        "users": _safe(dict(config.policy.users), frozenset()),
        "identity": _safe(dataclasses.asdict(config.identity), _secret_fields(config.identity)),
    }


def _secret_fields(obj: Any) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(obj) if f.metadata.get("secret"))


def _safe(values: dict[str, Any], secret: frozenset[str]) -> dict[str, Any]:
    """JSON-ready values with every secret-looking string (keys included) redacted."""
    from claudesec.redact import looks_like_secret, redact

    def clean(value: Any, is_secret: bool = False) -> Any:
        if isinstance(value, str):
            return redact(value) if value and (is_secret or looks_like_secret(value)) else value
        if isinstance(value, (list, tuple)):
            return [clean(v, is_secret) for v in value]
        if isinstance(value, dict):
            return {clean(k): clean(v, is_secret) for k, v in value.items()}
        return value

    return {clean(k): clean(v, k in secret) for k, v in values.items()}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "{}"
    return "" if value is None else str(value)

"""``--verify``: ask each issuer whether a found credential is live. Never on by default.

Anthropic keys are tried against ``GET /v1/models`` (Admin keys against
``GET /v1/organizations/me``) at ``anthropic.base_url``, with stdlib ``urllib``: importing the
SDK would cost ~2 s. AWS key pairs are tried with STS GetCallerIdentity, which needs no
permission; boto3 is imported only here. Each distinct credential is asked once, with a
timeout and bounded concurrency. Any error text is scrubbed of the secret before it is kept.
"""

from __future__ import annotations

import dataclasses
import importlib
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from claudesec.redact import scrub
from claudesec.scan.model import Finding, Verdict

ANTHROPIC_VERSION = "2023-06-01"
_ANTHROPIC_RULES = {"anthropic-api-key", "anthropic-admin-key", "anthropic-oauth-token"}
_AWS_INVALID = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "UnrecognizedClientException",
    "AuthFailure",
}


@dataclass(frozen=True)
class VerifySettings:
    anthropic_base_url: str = "https://api.anthropic.com"
    sts_endpoint_url: str = ""
    timeout_s: float = 5.0
    concurrency: int = 8


Outcome = tuple[str, str]  # (verdict, detail)


def verify_findings(findings: Sequence[Finding], settings: VerifySettings) -> list[Finding]:
    """The findings with ``verification`` set to live, invalid or unknown."""
    keys = {(f.rule_id, f.secret, f.related) for f in findings}
    jobs: dict[tuple[str, str, str | None], Callable[[], Outcome]] = {}
    for rule, secret, related in keys:
        jobs[(rule, secret, related)] = _checker(rule, secret, related, settings)
    outcomes: dict[tuple[str, str, str | None], Outcome] = {}
    with ThreadPoolExecutor(max_workers=max(1, settings.concurrency)) as pool:
        futures = {key: pool.submit(_safe, check, key[1]) for key, check in jobs.items()}
        for key, future in futures.items():
            outcomes[key] = future.result()
    return [
        dataclasses.replace(
            f,
            verification=outcomes[(f.rule_id, f.secret, f.related)][0],
            verification_detail=outcomes[(f.rule_id, f.secret, f.related)][1] or None,
        )
        for f in findings
    ]


def _safe(check: Callable[[], Outcome], secret: str) -> Outcome:
    try:
        verdict, detail = check()
    except Exception as exc:  # one broken check must not lose the others' answers
        verdict, detail = Verdict.UNKNOWN, f"{type(exc).__name__}: {exc}"
    return verdict, scrub(detail, [secret])


def _checker(
    rule: str, secret: str, related: str | None, settings: VerifySettings
) -> Callable[[], Outcome]:
    if rule in _ANTHROPIC_RULES:
        return lambda: _anthropic(rule, secret, settings)
    if rule == "aws-credentials" and related:
        key_id: str = related
        return lambda: _aws(key_id, secret, settings)
    return lambda: (Verdict.UNKNOWN, "no verifier for this kind")


def _anthropic(rule: str, secret: str, settings: VerifySettings) -> Outcome:
    base = settings.anthropic_base_url.rstrip("/")
    headers = {"anthropic-version": ANTHROPIC_VERSION, "user-agent": "claudesec-verify"}
    if rule == "anthropic-admin-key":
        url = f"{base}/v1/organizations/me"
        headers["x-api-key"] = secret
    elif rule == "anthropic-oauth-token":
        url = f"{base}/v1/models?limit=1"
        headers["authorization"] = f"Bearer {secret}"
        headers["anthropic-beta"] = "oauth-2025-04-20"
    else:
        url = f"{base}/v1/models?limit=1"
        headers["x-api-key"] = secret
    request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310 - http(s) base URL from config
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout_s) as response:  # noqa: S310
            response.read(0)
            return Verdict.LIVE, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return Verdict.INVALID, f"HTTP {exc.code}"
        return Verdict.UNKNOWN, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Verdict.UNKNOWN, f"network error: {reason}"


def _aws(key_id: str, secret: str, settings: VerifySettings) -> Outcome:
    # Through importlib so the types do not depend on boto3 stubs being installed.
    boto3: Any = importlib.import_module("boto3")
    botocore_config: Any = importlib.import_module("botocore.config")
    botocore_exceptions: Any = importlib.import_module("botocore.exceptions")
    client_error = botocore_exceptions.ClientError
    core_error = botocore_exceptions.BotoCoreError

    client = boto3.client(
        "sts",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        endpoint_url=settings.sts_endpoint_url or None,
        config=botocore_config.Config(
            connect_timeout=settings.timeout_s,
            read_timeout=settings.timeout_s,
            retries={"total_max_attempts": 1},
        ),
    )
    try:
        identity = client.get_caller_identity()
    except client_error as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _AWS_INVALID:
            return Verdict.INVALID, code
        return Verdict.UNKNOWN, code or "client error"
    except core_error as exc:
        return Verdict.UNKNOWN, f"{type(exc).__name__}"
    return Verdict.LIVE, str(identity.get("Arn", ""))

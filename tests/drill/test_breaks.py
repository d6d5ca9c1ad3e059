"""Breaking one defence on purpose turns exactly its drill red, and no other.

Each case monkeypatches one defence into a no-op in this process, then runs the offline
drills. The crash-matrix drill (about ten seconds) runs only in its own case: several other
breaks (the Admin API client, the policy) would rightly turn it red too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from claudesec.drill.catalogue import select
from claudesec.drill.model import Status
from claudesec.drill.runner import run_drills

SLOW = "rotation-crash-resume"
Break = Callable[[pytest.MonkeyPatch], None]


def _disable_rules(*rules: str) -> Break:
    def apply(mp: pytest.MonkeyPatch) -> None:
        from claudesec.detect import engine

        real = engine.default_engine

        def weakened(
            detectors: Any = engine.DETECTORS, *, disabled: Any = (), **options: Any
        ) -> Any:
            return real(detectors, disabled=(*disabled, *rules), **options)

        mp.setattr(engine, "default_engine", weakened)

    return apply


def _no_hook(mp: pytest.MonkeyPatch) -> None:
    from claudesec.scan import hook

    mp.setattr(hook, "hook_script", lambda python=None: f"#!/bin/sh\n{hook.MARKER}\nexit 0\n")


def _no_history(mp: pytest.MonkeyPatch) -> None:
    from claudesec.scan.sources.history import HistorySource

    mp.setattr(HistorySource, "scan", lambda self, scanner, jobs=1: [])


def _no_placeholder_filter(mp: pytest.MonkeyPatch) -> None:
    from claudesec.detect import validators

    mp.setattr(validators, "is_placeholder", lambda value, **kwargs: False)


def _hook_does_not_revoke(mp: pytest.MonkeyPatch) -> None:
    from claudesec.drill.drills import leak

    mp.setattr(leak, "HOOK_ARGS", ("--staged", "--verify"))


def _no_deactivation(mp: pytest.MonkeyPatch) -> None:
    from claudesec.anthropic_admin import AdminClient

    mp.setattr(AdminClient, "set_status", lambda self, key_id, status: self.retrieve_key(key_id))


def _no_settle(mp: pytest.MonkeyPatch) -> None:
    from claudesec.keys.rotation import KeyManager

    mp.setattr(KeyManager, "_settle", lambda self, run, state, current: None)


def _lint_passes_all(mp: pytest.MonkeyPatch) -> None:
    from claudesec.keys import scope

    mp.setattr(scope, "lint_policy", lambda *args, **kwargs: [])


def _policy_allows_all(mp: pytest.MonkeyPatch) -> None:
    from claudesec.guard.policy import Policy, PolicyDecision, Reason

    def allow(
        self: Policy, identity: Any, request: Any, *, role: Any = None, now: Any = None
    ) -> Any:
        chosen = role or (identity.roles[0] if identity.roles else "analyst")
        return PolicyDecision(True, Reason.ALLOWED, "", identity.user, chosen, ())

    mp.setattr(Policy, "evaluate", allow)


def _tokens_unverified(mp: pytest.MonkeyPatch) -> None:
    from claudesec.guard.identity import Identity, OidcVerifier

    mp.setattr(
        OidcVerifier,
        "verify",
        lambda self, token: Identity(user="alice@drill", roles=("analyst",), source="oidc"),
    )


def _dlp_blind(mp: pytest.MonkeyPatch) -> None:
    from claudesec.guard.dlp import DlpScanner

    mp.setattr(DlpScanner, "scan_parts", lambda self, parts, **kw: [[] for _ in parts])


def _proxy_open(mp: pytest.MonkeyPatch) -> None:
    from claudesec.proxy import server
    from claudesec.proxy.auth import Credential
    from claudesec.proxy.tokens import TokenStore

    mp.setattr(server, "extract_credential", lambda headers: Credential("proxy_token", "any"))
    mp.setattr(TokenStore, "verify", lambda self, secret: self.all()[0])


def _verify_says_ok(mp: pytest.MonkeyPatch) -> None:
    from claudesec.audit import verify

    real = verify.verify_store
    mp.setattr(
        verify,
        "verify_store",
        lambda store, **kw: dataclasses.replace(real(store, **kw), problems=()),
    )


def _fail_open(mp: pytest.MonkeyPatch) -> None:
    from claudesec.audit.store import StoredRecord
    from claudesec.guard.pipeline import AuditPipeline

    # Every write "succeeds": the admission written ahead and the call's record alike.
    mp.setattr(AuditPipeline, "_write", lambda self, event, raising: None)
    mp.setattr(AuditPipeline, "_write_ahead", lambda self, admission: StoredRecord(0, ""))


def _no_redaction(mp: pytest.MonkeyPatch) -> None:
    from claudesec.scan import model

    mp.setattr(model, "redact", lambda secret: secret)


def _any_subject(mp: pytest.MonkeyPatch) -> None:
    from claudesec.emulator import oauth

    mp.setattr(oauth, "subject_matches", lambda pattern, subject: True)


def _jti_reusable(mp: pytest.MonkeyPatch) -> None:
    from claudesec.emulator.oauth import TokenStore

    mp.setattr(TokenStore, "claim_jti", lambda self, issuer_id, jti, until: True)


def _signatures_unchecked(mp: pytest.MonkeyPatch) -> None:
    import jwt

    from claudesec.emulator import oauth

    def unverified(assertion: str, issuer: Any, registry: Any) -> Any:
        return jwt.decode(assertion, options={"verify_signature": False})

    mp.setattr(oauth, "_verified_claims", unverified)


def _tokens_never_expire(mp: pytest.MonkeyPatch) -> None:
    from claudesec.emulator.oauth import AccessToken

    mp.setattr(AccessToken, "expired", lambda self, now: False)


def _proxy_never_refreshes(mp: pytest.MonkeyPatch) -> None:
    from claudesec.proxy import upstream

    real = upstream._OnClock.__call__

    def forever(self: Any, *, force_refresh: bool = False) -> Any:
        from anthropic.lib.credentials import AccessToken

        token = real(self, force_refresh=force_refresh)
        return AccessToken(token=token.token, expires_at=None)

    mp.setattr(upstream._OnClock, "__call__", forever)


def _org_checks_blind(mp: pytest.MonkeyPatch) -> None:
    from claudesec.org import check
    from claudesec.org.check import Outcome

    # Every check "passes" whatever the organisation holds.
    mp.setattr(check, "_evaluate", lambda c, inventory, ctx: Outcome(c, "pass"))


BREAKS: dict[str, Break] = {
    "scan-precommit-hook": _no_hook,
    "scan-history": _no_history,
    "scan-notebook": _disable_rules("anthropic-api-key"),
    "scan-dotenv": _disable_rules("aws-credentials", "aws-secret-access-key"),
    "scan-minified-js": _disable_rules("github-token"),
    "scan-url": _disable_rules("connection-url-password"),
    "scan-placeholder": _no_placeholder_filter,
    "revoked-key-401": _no_deactivation,
    "scan-leak-to-dead-key": _hook_does_not_revoke,
    SLOW: _no_settle,
    "scope-unlisted-principal": _lint_passes_all,
    "policy-forbidden-model": _policy_allows_all,
    "identity-bad-tokens": _tokens_unverified,
    "dlp-prompt-secrets": _dlp_blind,
    "proxy-identity-and-key": _proxy_open,
    "federation-broad-rule": _any_subject,
    "federation-replayed-assertion": _jti_reusable,
    "federation-untrusted-issuer": _signatures_unchecked,
    "federation-leaked-token-expiry": _tokens_never_expire,
    "federation-proxy-refresh": _proxy_never_refreshes,
    "audit-tamper": _verify_says_ok,
    "audit-fail-closed": _fail_open,
    "org-posture-critical": _org_checks_blind,
    "no-canary-in-clear": _no_redaction,
}


def test_every_offline_drill_has_a_break() -> None:
    assert set(BREAKS) == {d.name for d in select((), ("offline",))}


@pytest.mark.parametrize("target", list(BREAKS))
def test_breaking_one_defence_turns_exactly_its_drill_red(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claudesec.detect import engine

    drills = [d for d in select((), ("offline",)) if d.name != SLOW or target == SLOW]
    monkeypatch.setattr(engine, "_ENGINES", {})  # engines built under a break are not reused
    BREAKS[target](monkeypatch)
    report = run_drills(drills)
    statuses = {r.name: r.status for r in report.results}
    red = sorted(name for name, status in statuses.items() if status is not Status.BLOCKED)
    assert red == [target], {
        r.name: (r.status.value, r.message) for r in report.results if r.name in red
    }
    assert statuses[target] is Status.FAILED
    assert report.exit_code == 1
    failed = next(r for r in report.results if r.name == target)
    assert failed.evidence and failed.fix

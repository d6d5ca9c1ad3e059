"""Workload identity federation drills, offline: the emulator's token exchange and a loopback
HTTPS OIDC issuer of the drill's own (real CA, real signatures, real claim shapes).

Each drill builds its organisation through the emulator's API with the real SDK (an
``org:admin`` OAuth token, a service account, a federation issuer, rules) and attacks one
defence of the exchange: an over-broad subject prefix, a replayed assertion, an untrusted
issuer, a leaked minted token, and the proxy's own token refresh. Time is the emulator's
clock (frozen, then moved): nothing sleeps.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from claudesec.drill.drills._servers import start_emulator
from claudesec.drill.interface import Drill
from claudesec.drill.model import DrillFailed, DrillInfraError

if TYPE_CHECKING:
    from claudesec.drill.context import DrillContext
    from claudesec.emulator import Emulator
    from claudesec.emulator.oidc_issuer import OidcIssuer

AUDIENCE = "https://api.anthropic.com"
PINNED_SUBJECT = "repo:acme/app:environment:prod"
OAUTH_BETA = "oauth-2025-04-20"


class _Organisation:
    """An emulated organisation trusting one loopback issuer, managed through the SDK."""

    def __init__(self, ctx: DrillContext) -> None:
        import anthropic

        from claudesec.emulator.oidc_issuer import OidcIssuer

        self.emulator: Emulator = start_emulator(ctx)
        self.emulator.state.freeze_clock()
        try:
            self.issuer: OidcIssuer = ctx.resources.enter_context(OidcIssuer())
        except OSError as exc:
            raise DrillInfraError(f"the loopback OIDC issuer could not start: {exc}") from exc
        state = self.emulator.state
        self.issuer.clock = lambda: state.now().timestamp()
        admin_token = state.add_oauth_token(scopes=("org:admin",)).access_token
        self.admin = ctx.resources.enter_context(
            anthropic.Anthropic(
                auth_token=admin_token,
                base_url=self.emulator.base_url,
                max_retries=0,
                default_headers={"anthropic-beta": OAUTH_BETA},
            )
        )
        org = self.admin.beta.organization
        self.account_id = org.service_accounts.create(name="deploy-bot").id
        self.issuer_id = org.federation.issuers.create(
            name="loopback-ci",
            issuer_url=self.issuer.issuer,
            jwks={"type": "discovery", "ca_cert_pem": self.issuer.ca_pem},
        ).id
        self.model = next(m.id for m in state.models if "haiku" in m.id)

    @property
    def organization_id(self) -> str:
        return self.emulator.state.organization_id

    def rule(self, name: str, subject_prefix: str, *, lifetime_s: int = 600) -> str:
        rule = self.admin.beta.organization.federation.rules.create(
            name=name,
            issuer_id=self.issuer_id,
            match={"subject_prefix": subject_prefix, "audience": AUDIENCE},
            oauth_scope="workspace:inference",
            target={"type": "service_account", "service_account_id": self.account_id},
            workspace_id=self.emulator.state.default_workspace_id,
            token_lifetime_seconds=lifetime_s,
        )
        return str(rule.id)

    def exchange(self, ctx: DrillContext, assertion: str, rule_id: str) -> str | None:
        """The access token minted for ``assertion`` under ``rule_id``, or None if refused."""
        from anthropic.lib.credentials import WorkloadIdentityError, exchange_federation_assertion

        try:
            with ctx.attempt():
                token = exchange_federation_assertion(
                    assertion=assertion,
                    federation_rule_id=rule_id,
                    organization_id=self.organization_id,
                    base_url=self.emulator.base_url,
                )
        except WorkloadIdentityError as exc:
            if exc.status_code in (400, 401):
                return None
            raise DrillInfraError(f"the token endpoint failed: {exc}") from exc
        return ctx.canary(token.token)

    def last_outcome(self) -> str:
        events = self.emulator.state.tokens.events()
        return events[-1].outcome if events else "none"

    def call(self, token: str) -> int:
        """Status of one Messages call with a minted token."""
        import anthropic

        with anthropic.Anthropic(
            auth_token=token,
            base_url=self.emulator.base_url,
            max_retries=0,
            default_headers={"anthropic-beta": OAUTH_BETA},
        ) as client:
            try:
                client.messages.create(
                    model=self.model,
                    max_tokens=8,
                    messages=[{"role": "user", "content": "hi"}],
                )
            except anthropic.APIStatusError as exc:
                return exc.status_code
            except anthropic.APIConnectionError as exc:
                raise DrillInfraError(f"the emulator did not answer: {exc}") from exc
        return 200


class _FederationDrill(Drill):
    weight = 2

    def setup(self, ctx: DrillContext) -> None:
        self.org = _Organisation(ctx)


class BroadRule(_FederationDrill):
    name = "federation-broad-rule"
    title = (
        "a federation rule pinned to one repository refuses a foreign repository's token "
        "that an over-broad subject prefix lets mint"
    )
    fix = (
        "Pin each rule to one repository and environment (subject_prefix "
        "'repo:OWNER/REPO:environment:NAME', or claims repository + environment); run "
        "`claudesec federation lint`."
    )

    def inject(self, ctx: DrillContext) -> None:
        org = self.org
        self.broad = org.rule("acme-any-repo", "repo:acme/*")
        self.pinned = org.rule("acme-app-prod", PINNED_SUBJECT)

        # A token of another repository of the organisation (or of anyone who can get a
        # workflow into it): what a prefix of repo:acme/* trusts without meaning to.
        # A fresh token for each attempt: a replayed jti would be refused for that reason
        # alone and hide what the rule itself does.
        def foreign() -> str:
            return org.issuer.github_actions("acme/scratch", environment="prod")

        self.exposed = org.exchange(ctx, foreign(), self.broad) is not None
        self.pinned_minted = org.exchange(ctx, foreign(), self.pinned) is not None
        self.pinned_reason = org.last_outcome()
        own = org.issuer.github_actions("acme/app", environment="prod")
        self.control = org.exchange(ctx, own, self.pinned) is not None

    def verify(self, ctx: DrillContext) -> None:
        if not self.control:
            raise DrillInfraError("the workload's own token did not mint: the drill proves nothing")
        if not self.exposed:
            raise DrillInfraError(
                "the broad rule refused the foreign token, so the exposure was not shown"
            )
        ctx.note("repo:acme/* minted a token for acme/scratch: the exposure is real")
        if self.pinned_minted:
            raise DrillFailed(
                "the pinned rule minted a token for a foreign repository",
                f"rule {PINNED_SUBJECT!r} accepted repo:acme/scratch",
            )
        ctx.note(f"the pinned rule refused it ({self.pinned_reason}); acme/app still mints")


class ReplayedAssertion(_FederationDrill):
    name = "federation-replayed-assertion"
    title = "an identity token already exchanged is refused when replayed (check_jti)"
    fix = "Keep check_jti on for every federation issuer whose tokens carry a jti."

    def inject(self, ctx: DrillContext) -> None:
        org = self.org
        rule = org.rule("acme-app-prod", PINNED_SUBJECT)
        assertion = org.issuer.github_actions("acme/app", environment="prod")
        self.first = org.exchange(ctx, assertion, rule) is not None
        # The attacker copied the job's token from a log and presents it again.
        self.replayed = org.exchange(ctx, assertion, rule) is not None
        self.reason = org.last_outcome()

    def verify(self, ctx: DrillContext) -> None:
        if not self.first:
            raise DrillInfraError("the first exchange did not mint: the drill proves nothing")
        if self.replayed:
            raise DrillFailed(
                "a replayed identity token minted a second access token",
                f"the same assertion was exchanged twice (last outcome: {self.reason})",
            )
        ctx.note(f"first exchange minted; the replay was refused ({self.reason})")


class UntrustedIssuer(_FederationDrill):
    name = "federation-untrusted-issuer"
    title = (
        "tokens from an issuer the organisation does not trust, or signed with a key it did "
        "not publish, cannot mint"
    )
    fix = (
        "Register only issuers you control or trust; never accept tokens whose kid is not in "
        "the issuer's JWKS."
    )

    def setup(self, ctx: DrillContext) -> None:
        from claudesec.emulator.oidc_issuer import OidcIssuer

        super().setup(ctx)
        try:
            self.rogue: OidcIssuer = ctx.resources.enter_context(OidcIssuer())
        except OSError as exc:
            raise DrillInfraError(f"the rogue OIDC issuer could not start: {exc}") from exc
        self.rogue.clock = self.org.issuer.clock

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.emulator.oidc_issuer import make_signing_key

        org = self.org
        rule = org.rule("acme-app-prod", PINNED_SUBJECT)
        self.minted: list[str] = []
        # Same claims, from another issuer entirely.
        other = self.rogue.github_actions("acme/app", environment="prod")
        if org.exchange(ctx, other, rule) is not None:
            self.minted.append("a token of another issuer")
        # The trusted issuer's name and kid, signed with a key the attacker made.
        forger = make_signing_key(kid=org.issuer.current_key.kid)
        forged = org.issuer.github_actions("acme/app", environment="prod", key=forger)
        if org.exchange(ctx, forged, rule) is not None:
            self.minted.append("a token signed with an unpublished key under the trusted kid")
        self.reasons = [e.outcome for e in org.emulator.state.tokens.events()]
        good = org.issuer.github_actions("acme/app", environment="prod")
        self.control = org.exchange(ctx, good, rule) is not None

    def verify(self, ctx: DrillContext) -> None:
        if not self.control:
            raise DrillInfraError("the trusted issuer's token did not mint: nothing is proven")
        if self.minted:
            raise DrillFailed("an untrusted token minted access", *self.minted)
        ctx.note(f"another issuer and a forged signature refused ({', '.join(self.reasons)})")


class LeakedTokenExpiry(_FederationDrill):
    name = "federation-leaked-token-expiry"
    title = "a leaked federated access token stops working at its expiry"
    fix = "Keep token_lifetime_seconds short (minutes, not hours) on every federation rule."

    def inject(self, ctx: DrillContext) -> None:
        org = self.org
        rule = org.rule("acme-app-prod", PINNED_SUBJECT, lifetime_s=300)
        assertion = org.issuer.github_actions("acme/app", environment="prod")
        token = org.exchange(ctx, assertion, rule)
        if token is None:
            raise DrillInfraError("the exchange did not mint: the drill proves nothing")
        self.before = org.call(token)
        [record] = [t for t in org.emulator.state.tokens.tokens() if t.rule_id == rule]
        lifetime = (record.expires_at - record.created_at).total_seconds()
        # The attacker holds the leaked token; time passes (the emulator's clock, no sleep).
        org.emulator.state.advance_clock(lifetime - 1)
        self.last_second = org.call(token)
        org.emulator.state.advance_clock(1)
        self.after = org.call(token)
        self.lifetime = lifetime

    def verify(self, ctx: DrillContext) -> None:
        if self.before != 200 or self.last_second != 200:
            raise DrillInfraError(
                f"the fresh token was refused ({self.before}, {self.last_second}): "
                "nothing is proven"
            )
        if self.after != 401:
            raise DrillFailed(
                "a federated access token kept working after its expiry",
                f"answer {self.after} at {self.lifetime:g} s",
            )
        ctx.note(f"the token worked for {self.lifetime:g} s and was refused (401) at expiry")


class ProxyRefresh(_FederationDrill):
    name = "federation-proxy-refresh"
    title = "a proxy that holds no static key keeps serving across its own federated token refresh"
    fix = (
        "Run the proxy with proxy.upstream_credential = 'federation' and a projected identity "
        "token the platform keeps fresh."
    )
    exclusive = ("scan-engine",)
    weight = 3

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("aiohttp") is None:
            return "needs aiohttp: pip install 'claudesec[proxy]'"
        return None

    def setup(self, ctx: DrillContext) -> None:
        from claudesec.config import AuditConfig, Config, PolicyConfig, ProxyConfig, RoleConfig
        from claudesec.drill.drills.audit import open_pipeline, open_store
        from claudesec.proxy.server import ThreadedProxy
        from claudesec.proxy.service import ServeOptions, build_server
        from claudesec.proxy.tokens import TokenStore

        super().setup(ctx)
        org = self.org
        rule = org.rule("proxy-prod", "system:serviceaccount:claude:proxy")
        self.token_file = ctx.workdir / "identity-token"
        self._rotate()
        config = Config(
            policy=PolicyConfig(
                roles={"dev": RoleConfig(models=("claude-haiku-*",), max_tokens=64)}
            ),
            audit=AuditConfig(store_path=str(ctx.workdir / "proxy-audit.db"), sample_rates={}),
            proxy=ProxyConfig(
                token_store=str(ctx.workdir / "tokens.json"),
                upstream_credential="federation",
                federation_rule_id=rule,
                federation_organization_id=org.organization_id,
                federation_identity_token_file=str(self.token_file),
            ),
        )
        store = open_store(ctx, "proxy-audit.db")
        state = org.emulator.state
        server = build_server(
            config,
            ServeOptions(listen="127.0.0.1:0", upstream=org.emulator.base_url),
            pipeline=open_pipeline(ctx, store, config),
            environ={},
            clock=lambda: state.now().timestamp(),
        )
        try:
            handle = ThreadedProxy(server).__enter__()
        except OSError as exc:
            raise DrillInfraError(f"the proxy could not start: {exc}") from exc
        ctx.resources.callback(handle.stop)
        self.server = server
        self.proxy_token = ctx.canary(
            TokenStore(ctx.workdir / "tokens.json")
            .create(user="alice", role="dev", lifetime_s=86_400)
            .secret
        )

    def _rotate(self) -> None:
        # What the kubelet does to a projected service-account token.
        token = self.org.issuer.kubernetes("claude", "proxy", audience=AUDIENCE)
        self.token_file.write_text(token, encoding="utf-8")

    def _call(self, ctx: DrillContext) -> int:
        import anthropic

        with (
            anthropic.Anthropic(
                api_key=self.proxy_token, base_url=self.server.base_url, max_retries=0
            ) as client,
            ctx.attempt(),
        ):
            try:
                client.messages.create(
                    model=self.org.model,
                    max_tokens=8,
                    messages=[{"role": "user", "content": "hi"}],
                )
            except anthropic.APIStatusError as exc:
                return exc.status_code
            except anthropic.APIConnectionError as exc:
                raise DrillInfraError(f"the proxy did not answer: {exc}") from exc
        return 200

    def inject(self, ctx: DrillContext) -> None:
        state = self.org.emulator.state
        self.statuses = [self._call(ctx)]
        credential: Any = self.server.credential
        # 600 s tokens; 100 s steps with the projected token renewed: the proxy refreshes
        # ahead of expiry (the SDK's advisory window) and never serves a dead token.
        for _ in range(9):
            state.advance_clock(100)
            self._rotate()
            self.statuses.append(self._call(ctx))
        self.exchanges = int(credential.exchanges)
        self.served_s = 900
        now = state.now()
        minted = [t for t in state.tokens.tokens() if t.rule_id is not None]
        self.expired = sum(1 for t in minted if t.expires_at <= now)

    def verify(self, ctx: DrillContext) -> None:
        failed = [f"call {i}: {s}" for i, s in enumerate(self.statuses) if s != 200]
        if failed:
            raise DrillFailed("the proxy stopped serving across its token refresh", *failed)
        if self.exchanges < 2 or not self.expired:
            raise DrillInfraError(
                f"{self.exchanges} exchange(s), {self.expired} expired: no refresh was exercised"
            )
        ctx.note(
            f"{len(self.statuses)} calls over {self.served_s} s on 600 s tokens: "
            f"{self.exchanges} exchanges, {self.expired} token(s) expired behind it, no key held"
        )

"""Proxy drill: a client with no identity is refused, and a client's own Anthropic key is
refused and never forwarded; only the key the proxy injects reaches the API."""

from __future__ import annotations

import http.client
import importlib.util
import json
from typing import TYPE_CHECKING

from claudesec.drill import canary
from claudesec.drill.drills._servers import start_emulator
from claudesec.drill.interface import Drill
from claudesec.drill.model import DrillFailed, DrillInfraError

if TYPE_CHECKING:
    from claudesec.drill.context import DrillContext

KEY_VAR = "DRILL_PROXY_UPSTREAM_KEY"


class ProxyIdentity(Drill):
    exclusive = ("scan-engine",)
    name = "proxy-identity-and-key"
    title = "the proxy refuses a client without identity and never forwards a client's own key"
    fix = "Run clients through `claudesec proxy` with proxy tokens; never hand them real keys."
    weight = 2

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

        self.emulator = start_emulator(ctx)
        self.upstream = self.emulator.state.add_key(
            "api", secret=ctx.canary(canary.anthropic_key("api"))
        )
        self.model = next(m.id for m in self.emulator.state.models if "haiku" in m.id)
        config = Config(
            policy=PolicyConfig(
                roles={"dev": RoleConfig(models=("claude-haiku-*",), max_tokens=64)}
            ),
            audit=AuditConfig(store_path=str(ctx.workdir / "proxy-audit.db"), sample_rates={}),
            proxy=ProxyConfig(
                key_source=f"env:{KEY_VAR}", token_store=str(ctx.workdir / "tokens.json")
            ),
        )
        store = open_store(ctx, "proxy-audit.db")
        server = build_server(
            config,
            ServeOptions(listen="127.0.0.1:0", upstream=self.emulator.base_url),
            pipeline=open_pipeline(ctx, store, config),
            environ={KEY_VAR: self.upstream.secret},
        )
        try:
            handle = ThreadedProxy(server).__enter__()
        except OSError as exc:
            raise DrillInfraError(f"the proxy could not start: {exc}") from exc
        ctx.resources.callback(handle.stop)
        self.port = server.port
        self.token = ctx.canary(
            TokenStore(ctx.workdir / "tokens.json")
            .create(user="alice", role="dev", lifetime_s=600)
            .secret
        )

    def _send(self, ctx: DrillContext, label: str, headers: dict[str, str]) -> int:
        body = json.dumps(
            {"model": self.model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
        )
        sent = {"content-type": "application/json", "anthropic-version": "2023-06-01", **headers}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            with ctx.attempt():
                connection.request("POST", "/v1/messages", body=body, headers=sent)
                response = connection.getresponse()
                data = response.read()
        except OSError as exc:
            raise DrillInfraError(f"the proxy did not answer: {exc}") from exc
        finally:
            connection.close()
        ctx.capture(f"proxy answer ({label})", data)
        return response.status

    def inject(self, ctx: DrillContext) -> None:
        control = self._send(ctx, "control", {"x-api-key": self.token})
        if control != 200:
            raise DrillInfraError(f"a valid proxy token got {control}, so the drill proves nothing")
        self.control_ids = {r.key_id for r in self.emulator.state.requests()}
        self.emulator.state.clear_requests()
        own = self.emulator.state.add_key("api", secret=ctx.canary(canary.anthropic_key("api")))
        self.own_id = own.id
        self.statuses = {
            "no credential": self._send(ctx, "no credential", {}),
            "client's own key": self._send(ctx, "own key", {"x-api-key": own.secret}),
            "own key beside a valid token": self._send(
                ctx,
                "own key and token",
                {"x-api-key": self.token, "authorization": f"Bearer {own.secret}"},
            ),
        }

    def verify(self, ctx: DrillContext) -> None:
        problems = [
            f"{label}: answered {status}, expected 401"
            for label, status in self.statuses.items()
            if status != 401
        ]
        reached = self.emulator.state.requests()
        if reached:
            problems.append(f"{len(reached)} refused request(s) reached the API")
        if any(r.key_id == self.own_id for r in reached):
            problems.append("the client's own key was forwarded to the API")
        if self.control_ids != {self.upstream.id}:
            problems.append("the allowed call did not use the proxy's injected key")
        if problems:
            raise DrillFailed("the proxy let a client through on its own terms", *problems)
        ctx.note("no credential, own key, own key + token: 401, nothing forwarded")
        ctx.note("allowed call went upstream with the injected key only")

"""A running proxy in front of the emulator, with a role policy and an audit store per test."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from claudesec.config import AuditConfig, Config, PolicyConfig, ProxyConfig, RoleConfig
from claudesec.emulator import Emulator, IssuedKey
from claudesec.proxy.server import ThreadedProxy
from claudesec.proxy.service import ServeOptions, build_server
from claudesec.proxy.tokens import TokenStore

KEY_VAR = "PROXY_TEST_UPSTREAM_KEY"


def make_config(tmp_path: Path, **proxy: Any) -> Config:
    roles = {
        "dev": RoleConfig(models=("claude-sonnet-*",), max_tokens=1024, dlp="block"),
        "redactor": RoleConfig(models=("claude-sonnet-*",), max_tokens=1024, dlp="redact"),
    }
    return Config(
        policy=PolicyConfig(users={}, roles=roles),
        audit=AuditConfig(store_path=str(tmp_path / "audit.db"), sample_rates={}),
        proxy=ProxyConfig(
            key_source=f"env:{KEY_VAR}",
            token_store=str(tmp_path / "tokens.json"),
            **proxy,
        ),
    )


@dataclass
class RunningProxy:
    base_url: str
    config: Config
    tokens: TokenStore
    upstream_key: IssuedKey
    handle: ThreadedProxy

    def token(self, user: str = "alice", role: str = "dev", lifetime_s: float = 3600) -> str:
        return self.tokens.create(user=user, role=role, lifetime_s=lifetime_s).secret

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.handle.server.port


@pytest.fixture
def start_proxy(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., RunningProxy]]:
    upstream = emulator.state.add_key("api", name="proxy-upstream")
    monkeypatch.setenv(KEY_VAR, upstream.secret)
    started: list[ThreadedProxy] = []

    def start(config: Config | None = None, **proxy: Any) -> RunningProxy:
        cfg = config or make_config(tmp_path, **proxy)
        server = build_server(cfg, ServeOptions(listen="127.0.0.1:0", upstream=emulator.base_url))
        handle = ThreadedProxy(server).__enter__()
        started.append(handle)
        return RunningProxy(
            handle.base_url, cfg, TokenStore.from_config(cfg.proxy), upstream, handle
        )

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def held_stream(emulator: Emulator) -> Iterator[threading.Event]:
    """Streams send their first event and hold the rest until this is set: a stream in
    progress, without timing. Set at teardown too, so a failing test cannot leave the
    proxy's shutdown waiting on a held stream (request it after the proxy fixtures)."""
    release = emulator.state.hold_streams()
    yield release
    release.set()


@pytest.fixture
def proxy(start_proxy: Callable[..., RunningProxy]) -> RunningProxy:
    return start_proxy()


def replace_proxy(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, proxy=dataclasses.replace(config.proxy, **changes))

"""Managed keys against moto's server and the Anthropic emulator, both on loopback."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from claudesec.anthropic_admin import AdminClient, probe_key
from claudesec.emulator import Emulator, IssuedKey
from claudesec.keys.events import MemorySink
from claudesec.keys.model import utcnow
from claudesec.keys.rotation import KeyManager, Settings
from claudesec.stores.secretsmanager import SecretsManagerStore


@dataclass
class Clock:
    """A clock tests can move forward."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


@dataclass
class Rig:
    emulator: Emulator
    admin_key: IssuedKey
    sm: Any
    endpoint: str
    clock: Clock
    sink: MemorySink
    settings: Settings
    make_manager: Callable[..., KeyManager]

    @property
    def manager(self) -> KeyManager:
        return self.make_manager()

    def new_key(self, status: str = "active") -> IssuedKey:
        return self.emulator.state.add_key("api", status=status)  # type: ignore[arg-type]

    def managed(self, name: str = "app") -> IssuedKey:
        key = self.new_key()
        self.manager.add(name, key.secret)
        return key

    def spares(self, count: int) -> list[IssuedKey]:
        keys = [self.new_key() for _ in range(count)]
        for key in keys:
            self.manager.pool_add(key.secret)
        return keys

    def current_key(self, name: str = "app") -> str:
        import json

        value = self.sm.get_secret_value(SecretId=f"claudesec/{name}", VersionStage="AWSCURRENT")
        return str(json.loads(value["SecretString"])["key"])

    def stages(self, name: str = "app") -> dict[str, list[str]]:
        return dict(self.sm.describe_secret(SecretId=f"claudesec/{name}")["VersionIdsToStages"])

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        self.emulator.state.reset()
        self.admin_key = self.emulator.state.add_key("admin", name="rig-admin")
        self.sink.events.clear()
        self.clock.offset = timedelta()


@pytest.fixture
def rig(emulator: Emulator, aws_client: Callable[..., Any], aws_endpoint: str) -> Iterator[Rig]:
    sm = aws_client("secretsmanager")
    clock = Clock()
    sink = MemorySink()
    settings = Settings(test_attempts=1, test_delay_s=0.0)
    holder: dict[str, Rig] = {}

    def make_manager(
        *, client: Any = None, settings_: Settings | None = None, **overrides: Any
    ) -> KeyManager:
        current = holder["rig"]
        admin = AdminClient(
            emulator.base_url, current.admin_key.secret, max_retries=0, sleep=lambda _: None
        )
        options: dict[str, Any] = {
            "admin": admin,
            "probe": partial(probe_key, emulator.base_url, timeout_s=5),
            "sink": sink,
            "clock": clock,
            "sleep": lambda _: None,
        }
        options.update(overrides)
        return KeyManager(
            SecretsManagerStore(client if client is not None else sm),
            settings_ or settings,
            **options,
        )

    rig = Rig(
        emulator=emulator,
        admin_key=emulator.state.add_key("admin", name="rig-admin"),
        sm=sm,
        endpoint=aws_endpoint,
        clock=clock,
        sink=sink,
        settings=settings,
        make_manager=make_manager,
    )
    holder["rig"] = rig
    yield rig


@pytest.fixture
def keys_config(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A claudesec.toml in the working directory wired to moto and the emulator."""
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", rig.admin_key.secret)
    path = Path.cwd() / "claudesec.toml"
    path.write_text(
        f"""
[anthropic]
base_url = "{rig.emulator.base_url}"
timeout_s = 5.0

[keys]
aws_region = "us-east-1"
aws_endpoint_url = "{rig.endpoint}"
aws_max_attempts = 1
admin_max_retries = 0
test_attempts = 1
test_retry_delay_s = 0.0
""",
        encoding="utf-8",
    )
    return path

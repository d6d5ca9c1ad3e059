"""The real npm clients (Claude Code's CLI, the TypeScript SDK) at pinned versions, installed
once into a cache directory under /tmp and run with every non-loopback destination refused.

A test that needs them is skipped, with the reason, only where npm (or node) is missing or
the npm registry cannot be reached; any other install failure fails the test.
"""

from __future__ import annotations

import fcntl
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Pinned: `npm view @anthropic-ai/claude-code version` (and .../sdk) when these were written.
CLAUDE_CODE = "@anthropic-ai/claude-code@2.1.332"
TS_SDK = "@anthropic-ai/sdk@1.16.0"
CACHE = Path(tempfile.gettempdir()) / "claudesec-test-npm" / "cc-2.1.332-sdk-1.16.0"
_UNREACHABLE = ("ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET", "ENETUNREACH")

# What keeps Claude Code on loopback: no telemetry, error reports, auto-update, release notes
# or other "nonessential" calls (without these it contacts api.anthropic.com at start).
QUIET = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}


@dataclass(frozen=True)
class NpmClients:
    root: Path

    @property
    def claude(self) -> Path:
        return self.root / "node_modules" / ".bin" / "claude"

    @property
    def node_modules(self) -> Path:
        return self.root / "node_modules"


def install() -> NpmClients:
    """The pinned packages, installed on first use (one installer at a time across workers)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm/node are not installed: the real npm clients cannot run")
    CACHE.mkdir(parents=True, exist_ok=True)
    clients = NpmClients(CACHE)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if clients.claude.exists() and (clients.node_modules / "@anthropic-ai" / "sdk").is_dir():
            return clients
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE),
             CLAUDE_CODE, TS_SDK],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            if any(code in done.stderr for code in _UNREACHABLE):
                pytest.skip(f"the npm registry is unreachable: {done.stderr.strip()[-300:]}")
            pytest.fail(f"npm install failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return clients


@dataclass
class Sentinel:
    """An HTTP(S) proxy on loopback that refuses everything and remembers where each request
    wanted to go: node clients get it as HTTPS_PROXY/HTTP_PROXY, with loopback as NO_PROXY,
    so any attempt to leave the machine is seen (and fails) instead of reaching out."""

    url: str
    seen: list[str] = field(default_factory=list)


@pytest.fixture
def sentinel() -> Iterator[Sentinel]:
    seen: list[str] = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_response(403)
            self.send_header("content-length", "0")
            self.end_headers()

        do_CONNECT = do_GET = do_POST = do_PUT = do_HEAD = _refuse

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Sentinel(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()


def loopback_env(home: Path, sentinel: Sentinel, **extra: str) -> dict[str, str]:
    """A clean environment for a node client: its own HOME, no inherited credentials, every
    non-loopback destination routed to the sentinel."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "HTTPS_PROXY": sentinel.url,
        "HTTP_PROXY": sentinel.url,
        "https_proxy": sentinel.url,
        "http_proxy": sentinel.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "NO_COLOR": "1",
        **QUIET,
        **extra,
    }


def run_json(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, object]:
    done = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    try:
        found = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"{argv[0]} printed no JSON ({done.returncode}): {done.stderr[-2000:]}")
    assert isinstance(found, dict), found
    return found

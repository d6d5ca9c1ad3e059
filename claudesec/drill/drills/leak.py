"""Leak-to-dead-key drill: a canary key committed with real git in a throwaway repository whose
pre-commit hook runs ``scan --staged --verify --revoke`` must answer 401 right after the commit.

The figure it reports is the time from ``git commit`` to the key's first 401 (the hook's scan,
verification, Admin API lookup and deactivation included), measured with the emulator as the
Anthropic API. It is evidence, never a pass/fail threshold: only "the key is dead" is.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from claudesec.drill import canary
from claudesec.drill.drills._servers import start_emulator
from claudesec.drill.interface import Drill
from claudesec.drill.model import DrillFailed, DrillInfraError

if TYPE_CHECKING:
    from claudesec.anthropic_admin import ProbeResult
    from claudesec.drill.context import DrillContext

# How long to keep asking after the commit returned (the hook revokes before it exits, so the
# first probe normally answers 401 already): a generous bound for a loaded machine.
DEADLINE_S = 30.0
_ADMIN_ENV = "ANTHROPIC_ADMIN_KEY"
# What the repository's pre-commit hook runs after `python -m claudesec.scan -c CONFIG`: the
# defence under test (tests/drill/test_breaks.py drops --revoke to see the drill turn red).
HOOK_ARGS: tuple[str, ...] = ("--staged", "--revoke")


class LeakToDeadKey(Drill):
    name = "scan-leak-to-dead-key"
    title = (
        "a live key committed in a repo whose hook runs `scan --verify --revoke` answers 401 "
        "right after the commit"
    )
    fix = (
        "Run `claudesec scan --staged --verify --revoke` in the pre-commit hook or CI (or set "
        'scan.on_live_key = "revoke"), with anthropic.admin_key_source pointing at an Admin key.'
    )
    weight = 3

    def setup(self, ctx: DrillContext) -> None:
        self.emulator = start_emulator(ctx)
        admin = self.emulator.state.add_key(
            "admin", secret=ctx.canary(canary.anthropic_key("admin"))
        )
        self.admin_secret = admin.secret
        self.repo = ctx.injected(ctx.init_repo("leaky"))
        config = self.repo.parent / "claudesec.toml"
        config.write_text(
            f'[anthropic]\nbase_url = "{self.emulator.base_url}"\n'
            f'admin_key_source = "env:{_ADMIN_ENV}"\ntimeout_s = 10.0\n\n'
            '[keys]\nstore = "keyring"\n',
            encoding="utf-8",
        )
        hook = self.repo / ".git" / "hooks" / "pre-commit"
        command = shlex.join(
            [sys.executable, "-m", "claudesec.scan", "-c", str(config), *HOOK_ARGS]
        )
        hook.write_text(f"#!/bin/sh\nexec {command}\n", encoding="utf-8")
        hook.chmod(0o755)

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.anthropic_admin import probe_key

        key = self.emulator.state.add_key("api", secret=ctx.canary(canary.anthropic_key("api")))
        self.key_id, self.key = key.id, key.secret
        if probe_key(self.emulator.base_url, key.secret, timeout_s=5).outcome != "valid":
            raise DrillInfraError("the fresh canary key does not work to begin with")
        (self.repo / "settings.py").write_text(
            f'ANTHROPIC_API_KEY = "{key.secret}"\n', encoding="utf-8"
        )
        ctx.git(self.repo, "add", "settings.py")
        with ctx.attempt():
            started = time.perf_counter()
            self.commit = self._commit(ctx)
            self.answer, self.elapsed_ms = self._first_refusal(started)

    def _commit(self, ctx: DrillContext) -> subprocess.CompletedProcess[str]:
        # The Admin key reaches the hook the way CI passes it: in the environment.
        env = ctx.env({_ADMIN_ENV: self.admin_secret})
        try:
            proc = subprocess.run(
                ["git", "commit", "-q", "-m", "add settings"],
                cwd=self.repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DrillInfraError(f"git commit could not run: {exc}") from exc
        ctx.capture("git commit stdout", proc.stdout)
        ctx.capture("git commit stderr", proc.stderr)
        return proc

    def _first_refusal(self, started: float) -> tuple[ProbeResult, float]:
        """Probe the key until it is refused or the deadline passes (a poll, not a sleep)."""
        from claudesec.anthropic_admin import probe_key

        deadline = started + DEADLINE_S
        while True:
            answer = probe_key(self.emulator.base_url, self.key, timeout_s=5)
            now = time.perf_counter()
            if answer.outcome == "rejected" or now >= deadline:
                return answer, (now - started) * 1000
            time.sleep(0.05)

    def verify(self, ctx: DrillContext) -> None:
        hook_output = (self.commit.stdout + self.commit.stderr).strip()
        if self.answer.outcome != "rejected":
            raise DrillFailed(
                "the committed key still works after the hook ran",
                f"key {self.key_id} answered {self.answer.status} {DEADLINE_S:.0f} s after "
                f"git commit; hook output: {hook_output[-300:]}",
            )
        if "revoked" not in hook_output:
            raise DrillFailed(
                "the key is dead, but the hook did not say it revoked it",
                f"hook output: {hook_output[-300:]}",
            )
        ctx.note(
            f"key {self.key_id}: git commit to HTTP {self.answer.status} in "
            f"{self.elapsed_ms:.0f} ms (commit exited {self.commit.returncode}, blocked)"
        )

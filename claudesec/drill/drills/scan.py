"""Scanner drills: leak a fresh key where developers leak keys, and prove ``claudesec scan``
(or its pre-commit hook) reports it; plant a placeholder and prove it stays quiet.

Each drill plants a different kind of credential, so a detector that stops working turns
exactly the drill that relies on it red.
"""

from __future__ import annotations

import json
import secrets
import string
from pathlib import Path
from typing import ClassVar

from claudesec.drill import canary
from claudesec.drill.context import DrillContext
from claudesec.drill.interface import Drill
from claudesec.drill.model import DrillFailed, DrillInfraError

_ANT = "sk-" + "ant-"


def _scan(ctx: DrillContext, target: Path, *, history: bool = False) -> list[tuple[str, str, str]]:
    """Scan like ``claudesec scan`` does; returns (rule, path, commit) per finding and keeps
    every report format's rendering for the canary sweep."""
    from claudesec.scan.command import ScanOptions, run_scan
    from claudesec.scan.reports import FORMATS, get_format

    options = ScanOptions(targets=(str(target),), history=history, no_git=not history, jobs=1)
    with ctx.attempt():
        result, _ = run_scan(options)
    for name in FORMATS:
        ctx.capture(f"scan report ({name})", get_format(name).render(result))
    return [(f.rule_id, f.path, f.commit.sha if f.commit else "") for f in result.findings]


def _repo(ctx: DrillContext, filename: str, text: str) -> Path:
    """A throwaway repository (marked as the breach) whose initial commit holds ``filename``."""
    repo = ctx.injected(ctx.init_repo())
    (repo / filename).write_text(text, encoding="utf-8")
    ctx.git(repo, "add", filename)
    ctx.git(repo, "commit", "-q", "-m", "initial")
    return repo


def _findings_text(found: list[tuple[str, str, str]]) -> str:
    return ", ".join(f"{rule} in {path}" for rule, path, _ in found) or "no findings"


class PreCommitHook(Drill):
    name = "scan-precommit-hook"
    title = "a key committed in a throwaway repo is stopped by the installed pre-commit hook"
    fix = (
        "Install the hook in every repository (`claudesec hook install`, or the pre-commit "
        "framework entry) and make sure `python -m claudesec.scan --staged` runs in it."
    )
    weight = 3

    def setup(self, ctx: DrillContext) -> None:
        from claudesec.scan.hook import install_hook

        self.repo = _repo(ctx, "README.md", "drill repository\n")
        self.head = ctx.git(self.repo, "rev-parse", "HEAD").stdout.strip()
        install_hook(str(self.repo))

    def inject(self, ctx: DrillContext) -> None:
        key = ctx.canary(canary.anthropic_key("api"))
        (self.repo / "settings.py").write_text(f'ANTHROPIC_API_KEY = "{key}"\n', encoding="utf-8")
        ctx.git(self.repo, "add", "settings.py")
        with ctx.attempt():
            self.commit = ctx.git(self.repo, "commit", "-q", "-m", "add settings", check=False)

    def verify(self, ctx: DrillContext) -> None:
        head = ctx.git(self.repo, "rev-parse", "HEAD").stdout.strip()
        output = self.commit.stdout + self.commit.stderr
        if self.commit.returncode == 0 or head != self.head:
            raise DrillFailed(
                "git commit went through with a key staged",
                f"git commit exited {self.commit.returncode}; HEAD moved to {head[:12]}",
            )
        if "anthropic-api-key" not in output:
            raise DrillFailed(
                "the commit failed, but not because the hook found the key",
                f"hook output: {output.strip()[-300:]}",
            )
        ctx.note(f"git commit exited {self.commit.returncode}; HEAD unchanged; hook named the rule")


class HistoryScan(Drill):
    exclusive = ("scan-engine",)
    name = "scan-history"
    title = "a key pushed into history and deleted later is found by the history scan"
    fix = "Run `claudesec scan --history` in CI on every repository, and rotate any key it finds."
    weight = 2

    def setup(self, ctx: DrillContext) -> None:
        self.repo = _repo(ctx, "app.py", "print('hello')\n")

    def inject(self, ctx: DrillContext) -> None:
        key = ctx.canary(canary.anthropic_key("admin"))
        config = self.repo / "deploy" / "admin.env"
        config.parent.mkdir()
        config.write_text(f"ANTHROPIC_ADMIN_KEY={key}\n", encoding="utf-8")
        ctx.git(self.repo, "add", "deploy/admin.env")
        ctx.git(self.repo, "commit", "-q", "--no-verify", "-m", "deploy config")
        self.leak_sha = ctx.git(self.repo, "rev-parse", "HEAD").stdout.strip()
        ctx.git(self.repo, "rm", "-q", "deploy/admin.env")
        ctx.git(self.repo, "commit", "-q", "--no-verify", "-m", "remove deploy config")
        self.found = _scan(ctx, self.repo, history=True)

    def verify(self, ctx: DrillContext) -> None:
        hits = [f for f in self.found if f[0] == "anthropic-admin-key" and f[2] == self.leak_sha]
        if not hits:
            raise DrillFailed(
                "the history scan missed a key that lives only in an old commit",
                f"expected anthropic-admin-key in commit {self.leak_sha[:12]}; "
                f"got {_findings_text(self.found)}",
            )
        ctx.note(f"found anthropic-admin-key in deleted file, commit {self.leak_sha[:12]}")


class _FileLeak(Drill):
    """A key planted in one file of a directory; the directory scan must report it."""

    exclusive = ("scan-engine",)
    filename: ClassVar[str]
    rules: ClassVar[tuple[str, ...]]

    def content(self, ctx: DrillContext) -> str:
        raise NotImplementedError

    def inject(self, ctx: DrillContext) -> None:
        self.root = ctx.injected(ctx.workdir / "project")
        target = self.root / self.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.content(ctx), encoding="utf-8")
        (self.root / "README.md").write_text("nothing to see\n", encoding="utf-8")
        self.found = _scan(ctx, self.root)

    def verify(self, ctx: DrillContext) -> None:
        hits = [f for f in self.found if f[0] in self.rules and f[1].endswith(self.filename)]
        if not hits:
            raise DrillFailed(
                f"the scan missed the key in {self.filename}",
                f"expected {' or '.join(self.rules)} in {self.filename}; "
                f"got {_findings_text(self.found)}",
            )
        ctx.note(f"found {hits[0][0]} in {self.filename}")


class NotebookLeak(_FileLeak):
    name = "scan-notebook"
    title = "a key in a Jupyter notebook cell is found"
    fix = "Clear notebook outputs and move the key to an environment variable or secret store."
    filename = "analysis.ipynb"
    rules = ("anthropic-api-key",)

    def content(self, ctx: DrillContext) -> str:
        key = ctx.canary(canary.anthropic_key("api"))
        cell = {
            "cell_type": "code",
            "execution_count": 1,
            "metadata": {},
            "outputs": [],
            "source": ["import anthropic\n", f'client = anthropic.Anthropic(api_key="{key}")\n'],
        }
        notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        return json.dumps(notebook, indent=1)


class DotenvLeak(_FileLeak):
    name = "scan-dotenv"
    title = "an AWS key pair in a .env file is found"
    fix = "Keep .env files out of git (.gitignore) and load cloud credentials from the role."
    filename = ".env"
    rules = ("aws-credentials", "aws-secret-access-key")

    def content(self, ctx: DrillContext) -> str:
        key_id, secret = canary.aws_key_pair()
        ctx.canary(secret)
        return (
            "APP_ENV=production\n"
            f"AWS_ACCESS_KEY_ID={key_id}\n"
            f"AWS_SECRET_ACCESS_KEY={ctx.canary(secret)}\n"
        )


class MinifiedJsLeak(_FileLeak):
    name = "scan-minified-js"
    title = "a token inside a one-line minified JavaScript bundle is found"
    fix = "Never bundle credentials into front-end code: call a back-end that holds them."
    filename = "static/app.min.js"
    rules = ("github-token",)

    def content(self, ctx: DrillContext) -> str:
        token = ctx.canary(canary.github_token())
        alphabet = string.ascii_letters
        chunks = []
        for i in range(1500):
            name = "".join(secrets.choice(alphabet) for _ in range(3))
            chunks.append(f"function {name}{i}(a,b){{return a+b*{i}}}")
            if i == 1100:
                chunks.append(f'var _c={{h:"api.github.com",t:"{token}"}}')
        return ";".join(chunks)  # one line, tens of kilobytes, as a bundler emits


class UrlLeak(_FileLeak):
    name = "scan-url"
    title = "a password inside a connection URL is found"
    fix = "Pass the password through an environment variable or secret store, not the URL."
    filename = "docker-compose.yml"
    rules = ("connection-url-password",)

    def content(self, ctx: DrillContext) -> str:
        password = ctx.canary(canary.password())
        url = "postgresql" + f"://app:{password}@db.internal:5432/orders"
        return f"services:\n  api:\n    environment:\n      DATABASE_URL: {url}\n"


class PlaceholderQuiet(Drill):
    exclusive = ("scan-engine",)
    name = "scan-placeholder"
    title = "placeholder keys in docs and templates are not reported (and a real one still is)"
    fix = (
        "A false alarm trains people to ignore the scanner: report the placeholder shape "
        "(redacted) as a bug; meanwhile mark it with `claudesec:allow RULE-ID`."
    )

    def inject(self, ctx: DrillContext) -> None:
        self.root = ctx.injected(ctx.workdir / "project")
        self.root.mkdir()
        body = "x" * 93
        placeholders = {
            ".env.example": f"ANTHROPIC_API_KEY={_ANT}api03-{body}AA\n",
            "README.md": (
                "Set your key:\n\n    export ANTHROPIC_API_KEY=<your-anthropic-api-key>\n\n"
                f"Keys look like `{_ANT}api03-...`; never commit one.\n"
            ),
            "settings.template.py": 'ANTHROPIC_API_KEY = "${ANTHROPIC_API_KEY}"\n'
            f'EXAMPLE_KEY = "{_ANT}api03-YOUR-KEY-HERE-{"0" * 76}AA"\n',
        }
        for name, text in placeholders.items():
            (self.root / name).write_text(text, encoding="utf-8")
        # The control: a real key beside the placeholders proves the scan is not simply blind.
        real = ctx.canary(canary.anthropic_key("admin"))
        (self.root / "ops.sh").write_text(f"export ANTHROPIC_ADMIN_KEY={real}\n", encoding="utf-8")
        self.placeholder_files = set(placeholders)
        self.found = _scan(ctx, self.root)

    def verify(self, ctx: DrillContext) -> None:
        noisy = [f for f in self.found if f[1] in self.placeholder_files]
        if noisy:
            raise DrillFailed(
                "a placeholder was reported as a leaked key",
                f"false alarms: {_findings_text(noisy)}",
            )
        if not any(f[1] == "ops.sh" for f in self.found):
            raise DrillInfraError(
                "the control key beside the placeholders was not found, so the drill proves "
                f"nothing (got {_findings_text(self.found)})"
            )
        ctx.note(f"{len(self.placeholder_files)} placeholder files quiet; the real key reported")

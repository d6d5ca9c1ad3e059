"""The README and docs/ as a new user follows them: every link resolves, every ``claudesec``
command line names real commands and options, and the examples marked ``<!-- doc-test: NAME
-->`` run as written (against the emulator where they need Anthropic)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from claudesec.emulator import Emulator, IssuedKey
from tests.fixtures.cli import REPO_ROOT, RunCli
from tests.fixtures.git import init_repo
from tests.fixtures.keys import KeyFactory

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
MARKED = re.compile(r"<!-- doc-test: ([\w-]+) -->\n```\w*\n(.*?)^```", re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def doc_ids() -> list[str]:
    return [str(p.relative_to(REPO_ROOT)) for p in DOCS]


def marked(name: str) -> str:
    for doc in DOCS:
        for found, body in MARKED.findall(doc.read_text(encoding="utf-8")):
            if found == name:
                return str(body)
    raise AssertionError(f"no <!-- doc-test: {name} --> block in README.md or docs/")


@pytest.mark.parametrize("doc", DOCS, ids=doc_ids())
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # an absolute URL: not reachable from tests (no network)
        path_part, _, anchor = target.partition("#")
        file = (doc.parent / path_part).resolve() if path_part else doc
        if not file.exists() or REPO_ROOT not in file.parents:
            broken.append(target)
            continue
        if anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), re.M)
            if anchor not in {slug(h) for h in headings}:
                broken.append(target)
    assert broken == []


def shell_commands(line: str) -> list[str]:
    """The commands of one shell line: split at ``;``, ``&``, ``|``, ``&&`` and ``||`` outside
    quotes (``trap 'kill %1 && wait' EXIT`` is one command)."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    at = 0
    while at < len(line):
        char = line[at]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in ";&|":
            parts.append("".join(current).strip())
            current = []
            at += 2 if line[at + 1 : at + 2] in ("&", "|") else 1
            continue
        current.append(char)
        at += 1
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def command_lines(doc: Path) -> list[list[str]]:
    """Each ``claudesec ...`` invocation in the document's shell blocks, as argv."""
    found: list[list[str]] = []
    for lang, body in FENCE.findall(doc.read_text(encoding="utf-8")):
        if lang not in ("sh", "bash", "shell", "console", ""):
            continue
        for raw in body.replace("\\\n", " ").splitlines():
            line = raw.strip().removeprefix("$ ")
            for part in shell_commands(line):
                words = shlex.split(part, comments=True) if part else []
                # Redirections (`> token.txt`, `2>/dev/null`) are the shell's, not the command's.
                words = [
                    w
                    for i, w in enumerate(words)
                    if not re.match(r"^\d?[<>]", w)
                    and not (i and re.fullmatch(r"\d?[<>]>?", words[i - 1]))
                ]
                while words and re.match(r"^[A-Z_]+=", words[0]):
                    words.pop(0)  # VAR=value before the command
                if words and words[0] == "claudesec":
                    found.append(words[1:])
    return found


@pytest.mark.parametrize("doc", DOCS, ids=doc_ids())
def test_every_command_line_names_real_commands_and_options(doc: Path, run_cli: RunCli) -> None:
    for argv in command_lines(doc):
        args = [a for a in argv if a != "--"]
        # --help after the words makes click check every command and option without running.
        result = run_cli(*args[: args.index("--") if "--" in args else None], "--help")
        assert result.exit_code == 0, (argv, result.stderr)


def test_the_readme_has_command_lines_to_check() -> None:
    assert len(command_lines(REPO_ROOT / "README.md")) >= 20


def test_readme_audited_client_example_runs_as_written(
    tmp_path: Path, emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    (tmp_path / "claudesec.toml").write_text(marked("audited-client-config"), encoding="utf-8")
    (tmp_path / "example.py").write_text(marked("audited-client"), encoding="utf-8")
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        ANTHROPIC_BASE_URL=emulator.base_url,
        ANTHROPIC_API_KEY=emulator_api_key.secret,
        CLAUDESEC_HOME=str(tmp_path / "home"),
    )
    ran = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    tail = subprocess.run(
        [sys.executable, "-m", "claudesec", "logs", "tail", "--format", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert tail.returncode == 0, tail.stderr
    assert '"user": "alice"' in tail.stdout
    assert len(emulator.state.requests()) == 1


def test_readme_pre_commit_config_blocks_a_commit_as_written(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "user")
    repo.write(".pre-commit-config.yaml", marked("pre-commit-config"))
    repo.add(".pre-commit-config.yaml")
    bindir = Path(sys.executable).parent
    env = dict(os.environ)
    env.update(
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        PATH=f"{bindir}{os.pathsep}{env['PATH']}",
        PYTHONPATH=str(REPO_ROOT),
    )
    subprocess.run(
        [str(bindir / "pre-commit"), "install"], cwd=repo.path, env=env, check=True, timeout=120
    )
    repo.write("settings.py", f'ADMIN_KEY = "{KeyFactory(83).anthropic_admin().value}"\n')
    repo.add("settings.py")
    blocked = subprocess.run(
        ["git", "commit", "-m", "add settings"],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert "anthropic-admin-key" in output

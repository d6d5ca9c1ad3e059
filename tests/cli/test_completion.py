from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import typer

from claudesec.cli.completion import SHELLS, command_tree, install_path, render
from claudesec.cli.main import app
from tests.fixtures.cli import REPO_ROOT, RunCli

ROOT = typer.main.get_command(app)


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_completions_match_the_cli(shell: str) -> None:
    committed = (REPO_ROOT / "completions" / f"claudesec.{shell}").read_text(encoding="utf-8")
    assert committed == render(shell, ROOT), (
        f"completions/claudesec.{shell} is stale: run scripts/update-completions"
    )


def test_tree_lists_every_group_and_command() -> None:
    paths = {node.path for node in command_tree(ROOT)}
    for group in ("keys", "scan", "drill", "logs", "policy", "config", "emulator"):
        assert group in paths
    assert "config show" in paths


def _bash_complete(words: list[str]) -> list[str]:
    script = render("bash", ROOT)
    line = " ".join(words)
    program = (
        f"{script}\n"
        f"COMP_WORDS=({line})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_claudesec\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout
    return [w for w in out.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes_groups_and_options() -> None:
    assert "config" in _bash_complete(["claudesec", "con"])
    assert _bash_complete(["claudesec", "config", "sh"]) == ["show"]
    assert _bash_complete(["claudesec", "config", "show", "--fo"]) == ["--format"]
    assert "--config" in _bash_complete(["claudesec", "--con"])


def test_completion_install_writes_to_the_user_directory(run_cli: RunCli, home: Path) -> None:
    result = run_cli("completion", "install", "fish")
    assert result.exit_code == 0
    target = install_path("fish", home)
    assert target.is_relative_to(home)
    assert target.read_text(encoding="utf-8") == render("fish", ROOT)


def test_completion_show_rejects_unknown_shells(run_cli: RunCli) -> None:
    result = run_cli("completion", "show", "tcsh")
    assert result.exit_code == 2
    assert "unknown shell 'tcsh'" in result.stderr

"""The pre-commit path: `claudesec hook install` and the real pre-commit framework, both
driving real `git commit`s."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from claudesec.scan.hook import MARKER
from tests.fixtures.cli import REPO_ROOT, RunCli
from tests.fixtures.git import GitRepo, init_repo
from tests.fixtures.keys import KeyFactory


def _commit(repo: GitRepo, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "commit", "-m", "try"],
        cwd=repo.path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_hook_install_blocks_a_leaky_commit_and_uninstall_removes_it(
    git_repo: GitRepo, run_cli: RunCli
) -> None:
    result = run_cli("hook", "install", "--repo", str(git_repo.path))
    assert result.exit_code == 0 and "installed" in result.stdout
    hook = git_repo.path / ".git" / "hooks" / "pre-commit"
    assert MARKER in hook.read_text() and os.access(hook, os.X_OK)
    assert "unchanged" in run_cli("hook", "install", "--repo", str(git_repo.path)).stdout

    key = KeyFactory(81).anthropic_api().value
    git_repo.write("app.py", f'KEY = "{key}"\n')
    git_repo.add("app.py")
    blocked = _commit(git_repo)
    assert blocked.returncode != 0
    output = blocked.stdout + blocked.stderr
    assert "app.py:1:8: anthropic-api-key" in output
    assert "fix:" in output and "claudesec:allow" in output and "commit blocked" in output
    assert key not in output

    git_repo.write("app.py", "KEY = os.environ['ANTHROPIC_API_KEY']\n")
    git_repo.add("app.py")
    assert _commit(git_repo).returncode == 0

    result = run_cli("hook", "uninstall", "--repo", str(git_repo.path))
    assert result.exit_code == 0 and "removed" in result.stdout
    assert not hook.exists()


def test_hook_install_refuses_a_foreign_hook_unless_forced(
    git_repo: GitRepo, run_cli: RunCli
) -> None:
    hook = git_repo.path / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text("#!/bin/sh\necho theirs\n")
    refused = run_cli("hook", "install", "--repo", str(git_repo.path))
    assert refused.exit_code == 2 and "not written by claudesec" in refused.stderr
    assert hook.read_text() == "#!/bin/sh\necho theirs\n"
    assert run_cli("hook", "uninstall", "--repo", str(git_repo.path)).exit_code == 2

    forced = run_cli("hook", "install", "--repo", str(git_repo.path), "--force")
    assert forced.exit_code == 0 and "kept as" in forced.stdout
    assert MARKER in hook.read_text()
    restored = run_cli("hook", "uninstall", "--repo", str(git_repo.path))
    assert "restored" in restored.stdout
    assert hook.read_text() == "#!/bin/sh\necho theirs\n"


def test_hook_install_honours_core_hooks_path(git_repo: GitRepo, run_cli: RunCli) -> None:
    git_repo.git("config", "core.hooksPath", "githooks")
    assert run_cli("hook", "install", "--repo", str(git_repo.path)).exit_code == 0
    assert MARKER in (git_repo.path / "githooks" / "pre-commit").read_text()


def test_hook_install_outside_a_repository(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("hook", "install", "--repo", str(tmp_path))
    assert result.exit_code == 2


def _hook_source_repo(tmp_path: Path) -> tuple[Path, str]:
    """A git repository holding this project as users would reference it by `repo:`."""
    source = tmp_path / "claudesec-src"
    source.mkdir()
    for name in ("pyproject.toml", ".pre-commit-hooks.yaml", "README.md", "LICENSE"):
        if (REPO_ROOT / name).exists():
            shutil.copy2(REPO_ROOT / name, source / name)
    if not (source / "README.md").exists():
        (source / "README.md").write_text("claudesec\n")
    shutil.copytree(
        REPO_ROOT / "claudesec",
        source / "claudesec",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    repo = init_repo(source)
    repo.add()
    return source, repo.commit("hook source")


@pytest.mark.slow
def test_pre_commit_framework_runs_the_published_hook(tmp_path: Path) -> None:
    source, rev = _hook_source_repo(tmp_path)
    user = init_repo(tmp_path / "user")
    user.write(
        ".pre-commit-config.yaml",
        f"repos:\n  - repo: {source}\n    rev: {rev}\n    hooks:\n      - id: claudesec\n",
    )
    user.add(".pre-commit-config.yaml")
    site_packages = sysconfig.get_paths()["purelib"]
    env = dict(os.environ)
    env.update(
        {
            "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
            # pre-commit builds the hook's virtualenv from the `repo:` above with pip: claudesec
            # comes from that clone (only its build backend from the package index), and its
            # runtime dependencies from this test's environment through PYTHONPATH, so the test
            # does not download boto3, anthropic and the rest.
            "PIP_NO_DEPS": "1",
            "PYTHONPATH": site_packages,
            "VIRTUALENV_SEEDER": "pip",
        }
    )
    bindir = Path(sys.executable).parent
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    installed = subprocess.run(
        [str(bindir / "pre-commit"), "install"],
        cwd=user.path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr

    key = KeyFactory(82).anthropic_admin().value
    user.write("settings.py", f'ADMIN_KEY = "{key}"\n')
    user.add("settings.py")
    blocked = _commit(user, env)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert "claudesec (leaked keys and secrets)" in output
    assert "settings.py:1:14: anthropic-admin-key" in output
    assert key not in output

    user.write("settings.py", "ADMIN_KEY = os.environ['ANTHROPIC_ADMIN_KEY']\n")
    user.add("settings.py")
    passed = _commit(user, env)
    assert passed.returncode == 0, passed.stdout + passed.stderr


def _follow_the_hint(output: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the accept command the blocked commit printed, word for word."""
    import shlex

    (line,) = [ln for ln in output.splitlines() if "to accept these findings:" in ln]
    command = line.split("to accept these findings:", 1)[1].split(" (", 1)[0].strip()
    words = shlex.split(command)
    assert words[0] == "claudesec"
    # `claudesec` as the user's shell finds it: the console script of this installation.
    words[0] = str(Path(sysconfig.get_path("scripts")) / "claudesec")
    return subprocess.run(words, cwd=cwd, capture_output=True, text=True, check=False)


def test_following_the_blocked_commit_hint_unblocks_the_hook(
    git_repo: GitRepo, run_cli: RunCli
) -> None:
    assert run_cli("hook", "install", "--repo", str(git_repo.path)).exit_code == 0
    factory = KeyFactory(82)
    git_repo.write("fixture.py", f'KEY = "{factory.anthropic_api().value}"\n')
    git_repo.add("fixture.py")
    blocked = _commit(git_repo)
    assert blocked.returncode != 0
    accepted = _follow_the_hint(blocked.stdout + blocked.stderr, git_repo.path)
    assert accepted.returncode == 0, accepted.stderr
    assert _commit(git_repo).returncode == 0  # the very next commit goes through

    # A second accepted leak keeps the first one accepted (the hook sees only the index).
    git_repo.write("other.py", f'TOKEN = "{factory.github_classic().value}"\n')
    git_repo.add("other.py")
    again = _commit(git_repo)
    assert again.returncode != 0
    assert _follow_the_hint(again.stdout + again.stderr, git_repo.path).returncode == 0
    assert _commit(git_repo).returncode == 0
    assert run_cli("scan", str(git_repo.path)).exit_code == 0

    # A new secret is still blocked: the baseline accepts what was accepted, nothing more.
    git_repo.write("new.py", f'KEY = "{factory.anthropic_api().value}"\n')
    git_repo.add("new.py")
    assert _commit(git_repo).returncode != 0

"""``--history`` on a real history: a package's successive PyPI releases, one commit each.

    .venv/bin/python benchmarks/history_corpus.py [--package pip] [--releases 80]
        [--workdir DIR] [--results FILE]

1. Lists the package's versions with ``pip index versions`` and downloads the wheel of each of
   the newest ``--releases`` final releases with ``pip download --no-deps --only-binary :all:``
   (the registry's own client; nothing else is fetched). Wheels, not sdists: a wheel is the
   release's source tree as shipped, and downloading one builds nothing.
2. Builds a repository: one commit per release, oldest first, the work tree replaced by the
   wheel's files each time (so files are added, edited in place, renamed and deleted as the
   project did), committed with the release's version as message. Fake keys made at run time
   (``tests/fixtures/keys.py``) are planted in a few releases: one added to the package's
   ``__init__.py`` (which every release edits) and removed five releases later, so it lives in
   five different blobs; one kept to the tip; one AWS pair copied into a second file.
   ``git gc`` packs it.
3. Runs ``claudesec scan --history`` (distinct secrets, the default) and ``--all-occurrences``,
   and ``gitleaks git`` on the same repository in the same run (median of 3 each), and prints
   wall time, CPU, findings, recall of the planted keys, the ratio and the ``uptime`` load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scan_bench import (  # noqa: E402
    LAST_CPU,
    ensure_tools,
    gitleaks_command,
    machine,
    timed,
    version,
)
from tests.fixtures.keys import KeyFactory  # noqa: E402

CLAUDESEC = [str(REPO / ".venv/bin/claudesec")]
_FINAL = re.compile(r"^\d+(\.\d+)*$")


def versions(package: str) -> list[str]:
    """Final releases, oldest first, as the index lists them."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", package],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = out.split("Available versions:", 1)[1].splitlines()[0]
    found = [v.strip() for v in listed.split(",") if _FINAL.match(v.strip())]
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def download(package: str, release: str, into: Path) -> Path | None:
    into.mkdir(parents=True, exist_ok=True)
    existing = list(into.glob(f"{package.replace('-', '_')}-{release}-*.whl"))
    if existing:
        return existing[0]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--quiet",
            "-d",
            str(into),
            f"{package}=={release}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    found = list(into.glob(f"{package.replace('-', '_')}-{release}-*.whl"))
    return found[0] if found else None


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env
    ).stdout


def build_repo(repo: Path, wheels: list[tuple[str, Path]]) -> dict[str, object]:
    """One commit per release; returns what was planted where."""
    factory = KeyFactory(2026)
    git(repo, "init", "-q", "-b", "main")
    n = len(wheels)
    removed_from, removed_to = n // 3, n // 3 + 5
    kept_from = (2 * n) // 3
    removed_key = factory.anthropic_api().value
    kept_key = factory.github_classic().value
    copied_key = factory.aws_pair()
    plants: dict[str, list[str]] = {"removed": [], "kept": [], "copied": []}
    for number, (release, wheel) in enumerate(wheels):
        for entry in repo.iterdir():
            if entry.name != ".git":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                name = info.filename
                if info.is_dir() or ".dist-info/" in name or name.startswith("/") or ".." in name:
                    continue
                target = repo / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(info))
        if removed_from <= number < removed_to:
            init = next(iter(sorted(repo.glob("*/__init__.py"))), repo / "settings.py")
            with init.open("a", encoding="utf-8") as handle:
                handle.write(f'\nANTHROPIC_API_KEY = "{removed_key}"\n')
            plants["removed"] = sorted({*plants["removed"], init.relative_to(repo).as_posix()})
        if number >= kept_from:
            (repo / "ci.env").write_text(f"GITHUB_TOKEN={kept_key}\n")
            plants["kept"] = ["ci.env"]
        if number in (kept_from, kept_from + 1):
            key_id, secret = copied_key
            text = f"aws_access_key_id = {key_id.value}\naws_secret_access_key = {secret.value}\n"
            for path in ("aws/credentials", f"backup/credentials-{number}"):
                (repo / path).parent.mkdir(parents=True, exist_ok=True)
                (repo / path).write_text(text)
                plants["copied"] = sorted({*plants["copied"], path})
        git(repo, "add", "-A")
        day = 1_600_000_000 + number * 86_400
        env = dict(
            os.environ,
            GIT_AUTHOR_DATE=f"@{day} +0000",
            GIT_COMMITTER_DATE=f"@{day} +0000",
            GIT_AUTHOR_NAME="release bot",
            GIT_AUTHOR_EMAIL="release@example.invalid",
            GIT_COMMITTER_NAME="release bot",
            GIT_COMMITTER_EMAIL="release@example.invalid",
        )
        git(repo, "commit", "-q", "--allow-empty", "-m", f"release {release}", env=env)
    git(repo, "gc", "-q", "--aggressive")
    return plants


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="pip")
    parser.add_argument("--releases", type=int, default=80)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    def uptime() -> str:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False
        ).stdout.strip()

    tools = ensure_tools()
    emit(f"machine: {machine()}")
    emit(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; {uptime()}")
    emit(f"gitleaks: {version([tools['gitleaks'], 'version'])}")
    with contextlib.ExitStack() as stack:
        if args.workdir:
            base = args.workdir.resolve()
            base.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="claudesec-hist-")))
        repo = base / f"{args.package}-{args.releases}"
        manifest = base / f"{args.package}-{args.releases}.json"
        if repo.is_dir() and manifest.exists():
            info = json.loads(manifest.read_text())
        else:
            releases = versions(args.package)[-args.releases :]
            wheels = []
            for release in releases:
                wheel = download(args.package, release, base / "wheels")
                if wheel is not None:
                    wheels.append((release, wheel))
            if repo.exists():
                shutil.rmtree(repo)
            repo.mkdir()
            plants = build_repo(repo, wheels)
            info = {"releases": [r for r, _ in wheels], "plants": plants}
            manifest.write_text(json.dumps(info))
        commits = int(git(repo, "rev-list", "--count", "--all").strip())
        size = git(repo, "count-objects", "-vH").split("size-pack: ")[-1].split("\n")[0]
        releases = info["releases"]
        emit(
            f"\nrepository: {args.package} {releases[0]} .. {releases[-1]}, {commits} commits "
            f"(one per release), {size} packed"
        )
        emit(f"\n### --history on a real release history ({uptime()})\n")
        emit("| command | median wall s | CPU s | findings | planted found |")
        emit("|---|---|---|---|---|")
        plants = {name: set(paths) for name, paths in info["plants"].items()}
        runs: dict[str, float] = {}
        report = base / "gitleaks-history.json"
        commands = {
            "claudesec scan --history": [*CLAUDESEC, "scan", "--history", ".", "-f", "json"],
            "claudesec scan --history --all-occurrences": [
                *CLAUDESEC,
                "scan",
                "--history",
                ".",
                "--all-occurrences",
                "-f",
                "json",
            ],
            "gitleaks git": gitleaks_command(tools["gitleaks"], "git", report),
        }
        for name, cmd in commands.items():
            samples = []
            for _ in range(args.repeat):
                wall, _, code, stdout = timed(cmd, repo)
                samples.append((wall, LAST_CPU[0], code, stdout))
            wall, cpu, code, stdout = sorted(samples)[len(samples) // 2]
            if name.startswith("claudesec"):
                found = json.loads(stdout)["findings"]
                paths = {f["path"] for f in found}
            else:
                found = json.loads(report.read_text())
                paths = {f["File"] for f in found}
            hit = sum(1 for where in plants.values() if where & paths)
            runs[name] = wall
            emit(f"| {name} | {wall:.2f} | {cpu:.2f} | {len(found)} | {hit} of {len(plants)} |")
        ratio = runs["gitleaks git"] / runs["claudesec scan --history"]
        emit(f"\nclaudesec --history: {ratio:.1f}x gitleaks' throughput (same repository and run)")
    if args.results:
        args.results.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

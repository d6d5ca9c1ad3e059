"""Every source on real files and real git repositories: directory, stdin, --staged, --history."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from claudesec.detect.engine import Engine
from claudesec.scan.scanner import BlobScanner
from claudesec.scan.sources import directory as directory_module
from claudesec.scan.sources.directory import DirectorySource
from tests.fixtures.cli import RunCli
from tests.fixtures.git import GitRepo
from tests.fixtures.keys import KeyFactory
from tests.scan.conftest import report, rules


def test_directory_scan_finds_keys_and_exits_1(tmp_path: Path, run_cli: RunCli) -> None:
    key = KeyFactory(31).anthropic_api().value
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "settings.py").write_text(f'KEY = "{key}"\n')
    (tmp_path / "clean.txt").write_text("nothing to see\n")
    result = run_cli("scan", str(tmp_path), "--format", "json")
    assert result.exit_code == 1
    found = report(result)["findings"]
    assert [(f["path"], f["line"], f["rule_id"]) for f in found] == [
        ("app/settings.py", 1, "anthropic-api-key")
    ]
    clean = run_cli("scan", str(tmp_path / "clean.txt"))
    assert clean.exit_code == 0


def test_gitignore_is_respected_and_no_git_scans_everything(
    git_repo: GitRepo, run_cli: RunCli
) -> None:
    key = KeyFactory(32).github_classic().value
    git_repo.write(".gitignore", "build/\n")
    git_repo.write("build/out.txt", f"token {key}\n")
    git_repo.write("src/untracked.txt", "nothing\n")
    path = str(git_repo.path)
    assert run_cli("scan", path).exit_code == 0
    result = run_cli("scan", path, "--no-git", "--format", "json")
    assert result.exit_code == 1
    assert [f["path"] for f in report(result)["findings"]] == ["build/out.txt"]


def test_untracked_files_in_a_repo_are_scanned(git_repo: GitRepo, run_cli: RunCli) -> None:
    git_repo.write("new.env", f"TOKEN={KeyFactory(33).npm().value}\n")
    assert rules(run_cli("scan", str(git_repo.path), "-f", "json")) == ["npm-token"]


def test_binary_files_are_skipped_by_content(tmp_path: Path, run_cli: RunCli) -> None:
    key = KeyFactory(34).anthropic_api().value
    (tmp_path / "blob.txt").write_bytes(b"\0\1\2" + key.encode())
    (tmp_path / "data.bin").write_text(f"{key}\n")  # text despite the extension
    result = run_cli("scan", str(tmp_path), "-f", "json")
    assert [f["path"] for f in report(result)["findings"]] == ["data.bin"]
    assert {"path": "blob.txt", "reason": "binary"} in report(result)["skipped"]


def test_symlinks_are_never_followed_out_of_the_tree(tmp_path: Path, run_cli: RunCli) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(KeyFactory(35).anthropic_api().value)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link.txt").symlink_to(outside / "secret.txt")
    (tree / "linkdir").symlink_to(outside, target_is_directory=True)
    assert run_cli("scan", str(tree), "--no-git").exit_code == 0


def test_fifo_in_tree_does_not_hang(tmp_path: Path, run_cli: RunCli) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "ok.txt").write_text("fine\n")
    assert run_cli("scan", str(tmp_path), "--no-git").exit_code == 0


def test_unreadable_file_is_a_warning_not_a_crash(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "locked.txt").write_text("x\n")
    (tmp_path / "leak.txt").write_text(KeyFactory(36).anthropic_api().value)
    real_open = os.open

    def deny(path: str, flags: int, *args: int) -> int:
        if str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", deny)
    result = run_cli("scan", str(tmp_path), "--no-git")
    assert result.exit_code == 1
    assert "warning: locked.txt: cannot read (Permission denied)" in result.stderr


def test_large_file_is_streamed_with_bounded_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claudesec.scan import scanner as scanner_module

    monkeypatch.setattr(scanner_module, "WHOLE_READ_LIMIT", 64 * 1024)
    monkeypatch.setattr(scanner_module, "BLOCK_SIZE", 32 * 1024)
    key = KeyFactory(37).anthropic_api().value
    filler = "some ordinary text here\n" * 20_000
    (tmp_path / "big.log").write_text(filler + f"KEY={key}\n" + filler)
    scanner = BlobScanner(Engine())
    (finding,) = DirectorySource(str(tmp_path), use_git=False).scan(scanner)
    assert finding.line == 20_001
    assert scanner.stats.bytes == (tmp_path / "big.log").stat().st_size


def test_parallel_scan_gives_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = KeyFactory(38)
    for i in range(60):
        text = f"KEY={factory.anthropic_api().value}\n" if i % 7 == 0 else "plain\n"
        (tmp_path / f"f{i:03}.txt").write_text(text)
    serial = DirectorySource(str(tmp_path), use_git=False).scan(BlobScanner(Engine()), jobs=1)
    monkeypatch.setattr(directory_module, "PARALLEL_MIN_FILES", 10)
    monkeypatch.setattr(directory_module, "CHUNK_FILES", 8)
    scanner = BlobScanner(Engine())
    parallel = DirectorySource(str(tmp_path), use_git=False).scan(scanner, jobs=2)
    assert parallel == serial and len(serial) == 9
    assert scanner.stats.files == 60


def test_stdin(run_cli: RunCli) -> None:
    key = KeyFactory(39).stripe().value
    result = run_cli("scan", "-", "-f", "json", input=f"paste: {key}\n")
    assert result.exit_code == 1
    (finding,) = report(result)["findings"]
    assert (finding["path"], finding["rule_id"]) == ("<stdin>", "stripe-key")
    assert run_cli("scan", "-", input="clean\n").exit_code == 0


# ------------------------------------------------------------------ --staged


def test_staged_scans_the_index_not_the_work_tree(
    git_repo: GitRepo, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = KeyFactory(40)
    staged_key = factory.anthropic_api().value
    git_repo.commit_file("README.md", "hello\n", "init")
    git_repo.write("config.py", f'KEY = "{staged_key}"\n')
    git_repo.add("config.py")
    git_repo.write("config.py", "KEY = os.environ['KEY']\n")  # fixed in the tree, not staged
    git_repo.write("notes.txt", f"{factory.github_classic().value}\n")  # never staged
    monkeypatch.chdir(git_repo.path)
    result = run_cli("scan", "--staged", "-f", "json")
    assert result.exit_code == 1
    assert [(f["path"], f["rule_id"]) for f in report(result)["findings"]] == [
        ("config.py", "anthropic-api-key")
    ]
    git_repo.add("config.py")
    assert run_cli("scan", "--staged").exit_code == 0


def test_staged_in_a_repo_without_commits_and_from_a_subdirectory(
    git_repo: GitRepo, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    git_repo.write("sub/dir/a.env", f"T={KeyFactory(41).gitlab().value}\n")
    git_repo.add()
    monkeypatch.chdir(git_repo.path / "sub")
    result = run_cli("scan", "--staged", "-f", "json")
    assert [f["path"] for f in report(result)["findings"]] == ["sub/dir/a.env"]


def test_staged_outside_a_repository_is_a_usage_error(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("scan", "--staged", str(tmp_path))
    assert result.exit_code == 2
    assert "--staged needs a git repository" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_git_missing_exits_3(
    git_repo: GitRepo, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "nobin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = run_cli("scan", "--staged", str(git_repo.path))
    assert result.exit_code == 3
    assert "git is not installed" in result.stderr


def test_history_option_misuse_is_exit_2(run_cli: RunCli) -> None:
    assert run_cli("scan", "--since", "2020-01-01").exit_code == 2
    assert run_cli("scan", "--staged", "--history").exit_code == 2
    assert run_cli("scan", "--disable", "no-such-rule").exit_code == 2
    assert run_cli("scan", "/no/such/path").exit_code == 2


# ------------------------------------------------------------------ --history


def _commit_at(repo: GitRepo, date: str, path: str, content: str, author: str) -> str:
    repo.write(path, content)
    repo.add(path)
    env = dict(
        os.environ,
        GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_DATE=date,
        GIT_AUTHOR_NAME=author,
        GIT_AUTHOR_EMAIL=f"{author.lower()}@example.invalid",
    )
    subprocess.run(
        ["git", "commit", "-q", "-m", f"edit {path}"], cwd=repo.path, env=env, check=True
    )
    return repo.git("rev-parse", "HEAD").strip()


def test_history_finds_a_removed_secret_with_commit_author_date_line(
    git_repo: GitRepo, run_cli: RunCli
) -> None:
    factory = KeyFactory(42)
    key = factory.anthropic_admin().value
    _commit_at(git_repo, "2024-01-01T10:00:00+00:00", "a.py", "x = 1\n", "Alice")
    leak = _commit_at(
        git_repo, "2024-02-01T10:00:00+00:00", "a.py", f"x = 1\nADMIN = '{key}'\n", "Bob"
    )
    _commit_at(git_repo, "2024-03-01T10:00:00+00:00", "a.py", "x = 1\n", "Alice")
    assert run_cli("scan", str(git_repo.path)).exit_code == 0  # the tree is clean now
    result = run_cli("scan", "--history", str(git_repo.path), "-f", "json")
    assert result.exit_code == 1
    (finding,) = report(result)["findings"]
    assert finding["rule_id"] == "anthropic-admin-key"
    assert finding["path"] == "a.py" and finding["line"] == 2
    assert finding["commit"]["sha"] == leak
    assert finding["commit"]["author"] == "Bob"
    assert finding["commit"]["date"].startswith("2024-02-01")
    assert report(result)["summary"]["commits"] == 3


def test_history_scans_each_blob_once_and_attributes_the_oldest_commit(
    git_repo: GitRepo, run_cli: RunCli
) -> None:
    key = KeyFactory(43).github_classic().value
    first = _commit_at(git_repo, "2024-01-01T00:00:00+00:00", "a.txt", f"{key}\n", "Alice")
    _commit_at(git_repo, "2024-01-02T00:00:00+00:00", "b.txt", "other\n", "Bob")
    git_repo.git("checkout", "-q", "-b", "side")
    _commit_at(git_repo, "2024-01-03T00:00:00+00:00", "copy.txt", f"{key}\n", "Carol")
    result = run_cli("scan", "--history", str(git_repo.path), "-f", "json")
    found = report(result)["findings"]
    # Same content in two paths is one blob: scanned and reported once.
    assert len(found) == 1 and found[0]["commit"]["sha"] == first


def test_history_since_and_branch(git_repo: GitRepo, run_cli: RunCli) -> None:
    factory = KeyFactory(44)
    _commit_at(
        git_repo, "2020-01-01T00:00:00+00:00", "old.txt", f"{factory.npm().value}\n", "Alice"
    )
    git_repo.git("checkout", "-q", "-b", "feature")
    _commit_at(
        git_repo, "2024-06-01T00:00:00+00:00", "new.txt", f"{factory.stripe().value}\n", "Bob"
    )
    git_repo.git("checkout", "-q", "main")
    path = str(git_repo.path)
    assert sorted(rules(run_cli("scan", "--history", path, "-f", "json"))) == [
        "npm-token",
        "stripe-key",
    ]
    assert rules(run_cli("scan", "--history", path, "--since", "2023-01-01", "-f", "json")) == [
        "stripe-key"
    ]
    assert rules(run_cli("scan", "--history", path, "--branch", "main", "-f", "json")) == [
        "npm-token"
    ]


def test_history_sees_content_only_a_merge_introduced(git_repo: GitRepo, run_cli: RunCli) -> None:
    key = KeyFactory(45).anthropic_api().value
    git_repo.commit_file("a.txt", "base\n", "base")
    git_repo.git("checkout", "-q", "-b", "side")
    git_repo.commit_file("b.txt", "side\n", "side")
    git_repo.git("checkout", "-q", "main")
    git_repo.commit_file("c.txt", "main\n", "main")
    git_repo.git("merge", "-q", "--no-commit", "side")
    git_repo.write("merge-only.txt", f"{key}\n")
    git_repo.add("merge-only.txt")
    merge = git_repo.commit("merge")
    found = report(run_cli("scan", "--history", str(git_repo.path), "-f", "json"))["findings"]
    assert [(f["path"], f["commit"]["sha"]) for f in found] == [("merge-only.txt", merge)]


def test_large_files_are_sniffed_before_being_read_whole(tmp_path: Path) -> None:
    key = KeyFactory(62).anthropic_api().value
    big_binary = b"\x7fELF\0\0" + os.urandom(200_000) + f"\nKEY={key}\n".encode()
    (tmp_path / "lib.so").write_bytes(big_binary)
    (tmp_path / "big.txt").write_text("text line\n" * 20_000 + f"KEY={key}\n")
    scanner = BlobScanner(Engine())
    (finding,) = DirectorySource(str(tmp_path), use_git=False).scan(scanner)
    assert (finding.path, finding.line) == ("big.txt", 20_001)
    assert [(s.path, s.reason) for s in scanner.stats.skipped] == [("lib.so", "binary")]
    assert scanner.stats.bytes == (tmp_path / "big.txt").stat().st_size


def test_history_shared_between_processes_gives_the_same_findings(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claudesec.scan.sources import history as history_module
    from claudesec.scan.sources.history import HistorySource

    factory = KeyFactory(63)
    for n in range(30):
        git_repo.write(f"f{n % 7}.txt", f"version {n}\n")
        if n % 4 == 0:
            git_repo.write(f"leak{n}.env", f"KEY={factory.anthropic_api().value}\n")
        git_repo.add()
        git_repo.commit(f"c{n}")
    git_repo.git("gc", "-q")  # packed: the storage order and delta bases matter
    git_repo.write("loose.env", f"KEY={factory.github_classic().value}\n")
    git_repo.add()
    git_repo.commit("loose objects too")
    root = str(git_repo.path)
    serial_scanner = BlobScanner(Engine())
    serial = HistorySource(root).scan(serial_scanner, jobs=1)
    monkeypatch.setattr(history_module, "PARALLEL_MIN_BLOBS", 5)
    monkeypatch.setattr(history_module, "CHUNK_BLOBS", 3)
    scanner = BlobScanner(Engine())
    shared = HistorySource(root).scan(scanner, jobs=3)
    assert shared == serial and len(serial) == 9
    assert scanner.stats.blobs == serial_scanner.stats.blobs
    assert scanner.stats.commits == serial_scanner.stats.commits == 31


def test_history_skips_oversized_blobs_without_reading_them(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claudesec.scan.sources import _git
    from claudesec.scan.sources.history import HistorySource

    key = KeyFactory(64).anthropic_api().value
    git_repo.commit_file("big.log", "x" * 5000 + f"\nKEY={key}\n", "big")
    git_repo.commit_file("small.env", f"KEY={key}\n", "small")
    requested: list[bytes] = []
    real = _git.cat_blobs

    def spy(cwd: str, names: list[bytes]) -> object:
        requested.extend(names)
        return real(cwd, names)

    monkeypatch.setattr("claudesec.scan.sources.history.cat_blobs", spy)
    scanner = BlobScanner(Engine(), max_file_size=4096)
    found = HistorySource(str(git_repo.path)).scan(scanner)
    assert [f.path for f in found] == ["small.env"]
    assert len(requested) == 1
    assert any("big.log" in w and "max_file_size" in w for w in scanner.stats.warnings)


def test_history_reports_each_distinct_secret_once_with_its_lifetime(
    git_repo: GitRepo, run_cli: RunCli
) -> None:
    factory = KeyFactory(44)
    gone, kept = factory.anthropic_api().value, factory.github_classic().value
    intro = _commit_at(git_repo, "2024-01-01T00:00:00+00:00", "a.py", f"K = '{gone}'\n", "Ann")
    # Three more commits edit the file around the key: old view, one finding per version.
    for n, day in enumerate(("02", "03", "04"), start=1):
        body = f"K = '{gone}'\n" + "".join(f"x{i} = {i}\n" for i in range(n))
        last = _commit_at(git_repo, f"2024-01-{day}T00:00:00+00:00", "a.py", body, "Ann")
    _commit_at(git_repo, "2024-01-05T00:00:00+00:00", "a.py", "K = os.environ['K']\n", "Ann")
    _commit_at(git_repo, "2024-01-06T00:00:00+00:00", "b.env", f"T={kept}\n", "Ben")
    _commit_at(git_repo, "2024-01-07T00:00:00+00:00", "c.txt", "unrelated\n", "Ben")
    path = str(git_repo.path)

    findings = report(run_cli("scan", "--history", path, "-f", "json"))["findings"]
    by_rule = {f["rule_id"]: f for f in findings}
    assert len(findings) == 2
    removed = by_rule["anthropic-api-key"]
    assert removed["commit"]["sha"] == intro
    assert removed["history"] == {
        "first_commit": intro,
        "last_commit": last,
        "last_date": "2024-01-04T00:00:00+00:00",
        "in_tree": False,
        "commits": 4,
        "paths": 1,
    }
    live = by_rule["github-token"]["history"]
    assert live["in_tree"] is True and live["commits"] == 2

    text = run_cli("scan", "--history", path)
    assert "no longer in HEAD; in 4 commits" in text.stdout
    assert "still in HEAD; in 2 commits" in text.stdout
    old = report(run_cli("scan", "--history", path, "--all-occurrences", "-f", "json"))
    assert len(old["findings"]) == 5 and all(f["history"] is None for f in old["findings"])


def test_batched_prefiltering_finds_exactly_what_file_by_file_scanning_finds(
    tmp_path: Path,
) -> None:
    """scan_files joins small text files for one prefilter pass: the same findings, skips and
    counters as scanning each file alone, whatever sits at the edges of the joined parts."""
    from tests.fixtures.keys import KEY_MAKERS, contexts

    factory = KeyFactory(2026)
    wrap = contexts()
    files: list[Path] = []

    def write(name: str, data: bytes) -> None:
        path = tmp_path / name
        path.write_bytes(data)
        files.append(path)

    for n, maker in enumerate(KEY_MAKERS):
        key = getattr(factory, maker)()
        for context, wrapper in wrap.items():
            text = wrapper(key.value)
            write(f"{n}-{context}.txt", text.encode())
            # The same secret flush against the start and the end of a file (no newline),
            # where a match could reach across the join into the next file.
            write(f"{n}-{context}-bare.txt", text.strip().encode())
        write(f"{n}-quiet.py", b"def f(x):\n    return x + 1\n" * 50)
    # Gate rules whose matches may span whitespace: split over two files, and at the edges.
    write("a-ends-with.txt", b"machine example.com\n")
    write("b-starts-with.txt", b"login alice password hunter2-but-longer\n")
    write("auth-at-start.txt", b"Basic " + b"QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    write("binary.bin", b"\x7fELF" + bytes(100))
    write("empty.txt", b"")
    pairs = [(str(path), path.name) for path in sorted(files)]

    alone = BlobScanner(Engine())
    expected = [finding for pair in pairs for finding in alone.scan_file(*pair)]
    batched = BlobScanner(Engine())
    assert Engine().quiet_parts([b"a", b"b"]) is not None  # the batch path is taken here
    found = batched.scan_files(pairs)
    assert sorted(found, key=repr) == sorted(expected, key=repr)
    assert len(expected) > len(KEY_MAKERS)
    assert batched.stats.bytes == alone.stats.bytes
    assert batched.stats.files == alone.stats.files
    assert batched.stats.skipped == alone.stats.skipped
    assert batched.stats.held_examples == alone.stats.held_examples

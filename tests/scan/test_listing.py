"""The file list a directory scan reads, made early in a forked process: the same list, the
same errors, nothing left behind."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from claudesec.scan.sources import listing
from tests.fixtures.git import GitRepo
from tests.fixtures.keys import KeyFactory

pytestmark = pytest.mark.skipif(
    not (hasattr(os, "memfd_create") and sys.platform == "linux"), reason="forks on Linux only"
)

# Run in a fresh interpreter: a fork is only made when no other thread runs, and a test
# process may hold threads other tests started.
COMPARE = """
import json, sys
from claudesec.scan.sources import listing
root, use_git = sys.argv[1], sys.argv[2] == "git"
listing.prefetch([root], use_git=use_git)
pending = (root, use_git) in listing._pending
early = listing.take(root, use_git=use_git)
now = listing.list_files(root, use_git=use_git)
print(json.dumps({"pending": pending, "same": early == now, "count": len(now)}))
"""


def _tree(root: Path) -> None:
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "deep.txt").write_text("x\n")
    (root / "top.txt").write_text("x\n")
    (root / "a" / "one.py").write_text("x\n")
    (root / ".git").mkdir()  # not a repository: a walk skips the folder all the same
    (root / ".git" / "config").write_text("x\n")
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("x\n")
    (root / "link-to-outside").symlink_to(outside, target_is_directory=True)
    # A name that is not UTF-8 comes back exactly (surrogate escapes both ways).
    (root / os.fsdecode(b"caf\xe9.txt")).write_text("x\n")
    (root / "line\nbreak.txt").write_text("x\n")
    (root / "empty").mkdir()


def _python(script: str, *args: str) -> dict[str, Any]:
    """What ``script`` prints as JSON, run by a fresh interpreter in the repository."""
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _compare(root: Path, mode: str) -> dict[str, Any]:
    return _python(COMPARE, str(root), mode)


def test_the_early_list_is_the_list_a_walk_gives(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    _tree(root)
    assert _compare(root, "walk") == {"pending": True, "same": True, "count": 6}
    assert sorted(listing.walk(str(root))) == sorted(
        [
            "top.txt",
            "a/one.py",
            "a/b/c/deep.txt",
            "link-to-outside",
            os.fsdecode(b"caf\xe9.txt"),
            "line\nbreak.txt",
        ]
    )


def test_the_early_list_is_what_git_lists(git_repo: GitRepo) -> None:
    git_repo.write(".gitignore", "build/\n")
    git_repo.write("build/out.txt", "x\n")
    git_repo.write("src/app.py", "x\n")
    git_repo.add()
    git_repo.commit("first")
    git_repo.write("src/untracked.txt", "x\n")
    assert _compare(git_repo.path, "git") == {"pending": True, "same": True, "count": 3}


def test_an_empty_tree_lists_nothing(tmp_path: Path) -> None:
    assert _compare(tmp_path, "walk") == {"pending": True, "same": True, "count": 0}


def test_a_failing_git_listing_fails_as_it_does_without_the_early_list(
    git_repo: GitRepo,
) -> None:
    # git rev-parse still finds the work tree, git ls-files cannot read the index: the forked
    # listing fails, and the scan must fail with git's own error, not fall back to a walk.
    git_repo.commit_file("app.py", "x\n", "first")
    (git_repo.path / ".git" / "index").write_bytes(b"DIRC" + os.urandom(64))
    runs = [
        subprocess.run(
            [sys.executable, "-m", "claudesec.scan", str(git_repo.path), *jobs],
            capture_output=True,
            text=True,
            check=False,
        )
        for jobs in ([], ["-j", "1"])
    ]
    assert [r.returncode for r in runs] == [3, 3]
    assert runs[0].stderr == runs[1].stderr
    assert runs[0].stderr.startswith("claudesec: error: git ls-files failed")


def test_a_scan_with_the_early_list_reports_what_one_process_reports(tmp_path: Path) -> None:
    factory = KeyFactory(81)
    for i in range(1600):  # over PARALLEL_MIN_FILES: the forked workers share the list
        folder = tmp_path / f"pkg{i % 37}"
        folder.mkdir(exist_ok=True)
        text = f"KEY={factory.anthropic_api().value}\n" if i % 151 == 0 else f"x = {i}\n"
        (folder / f"m{i}.py").write_text(text)
    (tmp_path / "lib.so").write_bytes(b"\x7fELF\0" + os.urandom(70_000))
    for i in range(40):  # binaries all over: each process skips some, the report lists all
        (tmp_path / f"pkg{i % 37}" / f"b{i}.so").write_bytes(b"\x7fELF\0" + os.urandom(100))
    # Exclusions apply to each chunk as it is claimed: pkg3 holds one of the keys.
    config = tmp_path.parent / f"{tmp_path.name}.toml"
    config.write_text('[scan]\nexclude_paths = ["pkg3/**"]\n')
    command = [sys.executable, "-m", "claudesec.scan", str(tmp_path), "--no-git", "-f", "json"]
    reports = [
        subprocess.run(
            [*command, "--config", str(config), "-j", jobs],
            capture_output=True,
            text=True,
            check=False,
        )
        for jobs in ("2", "1")
    ]
    assert [r.returncode for r in reports] == [1, 1]
    early, serial = (json.loads(r.stdout) for r in reports)
    assert early["findings"] == serial["findings"] and len(early["findings"]) == 10
    assert not any(f["path"].startswith("pkg3/") for f in early["findings"])
    for summary in (early["summary"], serial["summary"]):
        del summary["duration_s"]
    assert (early["summary"], early["skipped"]) == (serial["summary"], serial["skipped"])
    skipped = [(s["path"], s["reason"]) for s in early["skipped"]]
    assert skipped == sorted(skipped)


# The child lists 2,000 paths, then fails: the scan must not report that part of the tree as
# the whole. It lists again in-process and scans everything once.
BROKEN_MIDWAY = """
import json, os, sys
from claudesec.detect.engine import Engine
from claudesec.scan.scanner import BlobScanner
from claudesec.scan.sources import listing
from claudesec.scan.sources.directory import DirectorySource

parent, real_walk, how = os.getpid(), listing.walk, sys.argv[2]
def walk(root):
    for n, path in enumerate(real_walk(root)):
        if n == 2000 and os.getpid() != parent:
            if how == "killed":
                os.kill(os.getpid(), 9)
            raise OSError("the disk went away")
        yield path
listing.walk = walk
root = sys.argv[1]
listing.prefetch([root], use_git=False)
scanner = BlobScanner(Engine())
found = DirectorySource(root, use_git=False).scan(scanner, jobs=2)
print(json.dumps({"findings": [f.path for f in found], "files": scanner.stats.files}))
"""


@pytest.mark.parametrize("how", ["raises", "killed"])
def test_a_listing_that_fails_midway_is_made_again_and_nothing_counted_twice(
    tmp_path: Path, how: str
) -> None:
    factory = KeyFactory(82)
    for i in range(3000):
        folder = tmp_path / f"d{i % 50}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}.txt").write_text(
            f"K={factory.anthropic_api().value}\n" if i % 500 else "x\n"
        )
    result = _python(BROKEN_MIDWAY, str(tmp_path), how)
    assert result["files"] == 3000
    assert len(result["findings"]) == 3000 - 6


DISCARDED = """
import json, os, sys
from claudesec.scan.sources import listing
listing.prefetch([sys.argv[1]], use_git=False)
(pending,) = listing._pending.values()
listing.discard()
try:
    os.waitpid(pending.pid, os.WNOHANG)
    reaped = False
except ChildProcessError:
    reaped = True
print(json.dumps({"left": len(listing._pending), "reaped": reaped}))
"""


def test_listings_not_taken_are_stopped_and_reaped(tmp_path: Path) -> None:
    assert _python(DISCARDED, str(tmp_path)) == {"left": 0, "reaped": True}


def test_nothing_is_forked_while_another_thread_runs(tmp_path: Path) -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        listing.prefetch([str(tmp_path)], use_git=False)
        assert not listing._pending
    finally:
        stop.set()
        other.join()
    assert listing.take(str(tmp_path), use_git=False) is None


def test_files_symlinks_and_missing_paths_are_not_prefetched(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "dir", target_is_directory=True)
    roots = [str(tmp_path / name) for name in ("file.txt", "link", "missing")]
    listing.prefetch(roots, use_git=False)
    assert not listing._pending


TALLY = """
import json, sys
from claudesec.scan.sources import listing
root = sys.argv[1]
listing.prefetch([root], use_git=False)
growing = listing.take_stream(root, use_git=False)
seen = []
with growing:
    assert growing.completed()  # 200 paths: 4 notes, the child never waits for a reader
    seen.append(growing.tally())
    growing.claim(), growing.claim()
    seen.append(growing.tally())
    while growing.claim() is not None:
        pass
    seen.append(growing.tally())
print(json.dumps({"seen": seen}))
"""


def test_a_growing_listing_tallies_what_is_claimed_of_what_is_listed(tmp_path: Path) -> None:
    for i in range(200):
        (tmp_path / f"f{i}.txt").write_text("x\n")
    assert _python(TALLY, str(tmp_path)) == {"seen": [[0, 200], [128, 200], [200, 200]]}


PROGRESS = """
import json, sys
from claudesec.detect.engine import Engine
from claudesec.scan.scanner import BlobScanner
from claudesec.scan.sources import listing
from claudesec.scan.sources.directory import DirectorySource
root = sys.argv[1]
listing.prefetch([root], use_git=False)
calls = []
scanner = BlobScanner(Engine())
scanner.progress = lambda done, total, unit: calls.append((done, total, unit))
found = DirectorySource(root, use_git=False).scan(scanner, jobs=2)
print(json.dumps({"calls": calls, "found": len(found), "files": scanner.stats.files}))
"""


def test_a_scan_of_a_growing_listing_offers_progress_to_the_total(tmp_path: Path) -> None:
    factory = KeyFactory(83)
    for i in range(2500):
        folder = tmp_path / f"d{i % 40}"
        folder.mkdir(exist_ok=True)
        text = f"K={factory.anthropic_api().value}\n" if i % 250 == 0 else "x\n"
        (folder / f"f{i}.txt").write_text(text)
    result = _python(PROGRESS, str(tmp_path))
    assert (result["found"], result["files"]) == (10, 2500)
    calls = [tuple(call) for call in result["calls"]]
    assert calls[-1] == (2500, 2500, "files")
    assert all(done <= total for done, total, _ in calls)
    for earlier, later in itertools.pairwise(calls):
        assert later[0] >= earlier[0] and later[1] >= earlier[1]


REFUSED = """
import errno, json, os, sys
from claudesec.scan.sources import listing
def refuse(*_args, **_kwargs):
    raise OSError(errno.EMFILE, "Too many open files")
setattr(os, sys.argv[2], refuse)
from claudesec.scan.__main__ import main
code = main([sys.argv[1], "--no-git", "-f", "json", "-o", sys.argv[3]])
print(json.dumps({"code": code, "pending": len(listing._pending)}))
"""


@pytest.mark.parametrize("call", ["memfd_create", "pipe", "fork"])
def test_a_system_that_refuses_the_early_listing_still_gets_its_scan(
    tmp_path: Path, call: str
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.py").write_text(f"KEY = '{KeyFactory(84).anthropic_api().value}'\n")
    report = tmp_path / "report.json"
    assert _python(REFUSED, str(tree), call, str(report)) == {"code": 1, "pending": 0}
    assert [f["path"] for f in json.loads(report.read_text())["findings"]] == ["app.py"]

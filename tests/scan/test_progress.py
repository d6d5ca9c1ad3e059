"""Progress of long scans on a terminal: offered by every directory and history path (serial
and shared between processes), drawn on stderr only when it is a terminal, erased at the end."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from claudesec.console import Console, Environment
from claudesec.detect.engine import Engine
from claudesec.scan import parallel
from claudesec.scan.command import ScanOptions, execute
from claudesec.scan.progress import TerminalProgress
from claudesec.scan.scanner import BlobScanner
from claudesec.scan.sources import directory as directory_module
from claudesec.scan.sources import history as history_module
from claudesec.scan.sources.directory import DirectorySource
from claudesec.scan.sources.history import HistorySource
from tests.fixtures.git import GitRepo

Calls = list[tuple[int, int, str]]


def _recording_scanner() -> tuple[BlobScanner, Calls]:
    calls: Calls = []
    scanner = BlobScanner(Engine())
    scanner.progress = lambda done, total, unit: calls.append((done, total, unit))
    return scanner, calls


def _tree(root: Path, files: int) -> None:
    for n in range(files):
        (root / f"f{n}.txt").write_text(f"line {n}\n")


def _check(calls: Calls, total: int, unit: str) -> None:
    assert calls, "no progress offered"
    assert calls[-1] == (total, total, unit)
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and all(0 <= d <= total for d in done)
    assert {t for _, t, _ in calls} == {total}


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_directory_scan_offers_progress_to_its_total(
    tmp_path: Path, jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directory_module, "PARALLEL_MIN_FILES", 10)
    monkeypatch.setattr(directory_module, "CHUNK_FILES", 4)
    _tree(tmp_path, 60)
    scanner, calls = _recording_scanner()
    DirectorySource(str(tmp_path), use_git=False).scan(scanner, jobs=jobs)
    _check(calls, 60, "files")


@pytest.mark.parametrize("jobs", [1, 3])
def test_a_history_scan_offers_progress_in_blobs(
    git_repo: GitRepo, jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_module, "PARALLEL_MIN_BLOBS", 5)
    monkeypatch.setattr(history_module, "CHUNK_BLOBS", 3)
    for n in range(12):
        git_repo.write(f"f{n}.txt", f"version {n}\n")
        git_repo.add()
        git_repo.commit(f"c{n}")
    scanner, calls = _recording_scanner()
    HistorySource(str(git_repo.path)).scan(scanner, jobs=jobs)
    _check(calls, 12, "blobs")


@pytest.mark.skipif(not parallel.can_fork(), reason="fork-based sharing is Linux-only")
def test_shared_work_reports_claims_while_the_workers_run() -> None:
    seen = threading.Event()
    claimed: list[int] = []

    def on_claimed(count: int) -> None:
        claimed.append(count)
        seen.set()

    def work(claim: parallel.Claim) -> int:
        first = claim()
        # The parent holds its first chunk until the watcher has reported (a deadline, not a
        # pause: it returns as soon as the report arrives).
        seen.wait(30)
        count = 1 if first is not None else 0
        while claim() is not None:
            count += 1
        return count

    results = parallel.share(40, 1, work, on_claimed)
    assert sum(results) == 40
    assert claimed and 1 <= claimed[0] <= 40


def _console(tty: bool) -> tuple[Console, io.StringIO]:
    err = io.StringIO()
    env = Environment(stdout=io.StringIO(), stderr=err, stdout_isatty=False, stderr_isatty=tty)
    return Console(env), err


@pytest.mark.parametrize("tty", [True, False])
def test_the_line_is_drawn_on_a_terminal_only_and_erased_before_the_summary(
    tmp_path: Path, tty: bool
) -> None:
    _tree(tmp_path, 30)
    console, err = _console(tty)
    code = execute(ScanOptions(targets=(str(tmp_path),), no_git=True), None, console)
    assert code == 0
    text = err.getvalue()
    if not tty:
        assert "scanning:" not in text and "\x1b" not in text
        return
    drawn, _, after = text.rpartition("\r\x1b[K")
    assert "scanning: 30/30 files (100%)" in drawn
    assert "scanning" not in after and "claudesec scan" in after  # the summary follows


def test_the_drawer_redraws_a_few_times_a_second_but_always_the_last_step() -> None:
    now = [0.0]
    out = io.StringIO()
    drawer = TerminalProgress(out, clock=lambda: now[0])
    for done in range(100):
        now[0] += 0.01
        drawer(done, 100, "files")
    drawer(100, 100, "files")
    lines = out.getvalue().split("\r\x1b[K")[1:]
    assert 4 <= len(lines) <= 7  # ~1 s of work at one redraw per 0.2 s, plus the final one
    assert lines[-1].startswith("scanning: 100/100 files (100%)")
    drawer.close()
    assert out.getvalue().endswith("\r\x1b[K")

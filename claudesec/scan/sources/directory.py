"""A directory tree (or single file) on disk.

Which files are read is :mod:`listing`'s job (``git ls-files`` in a work tree, else a walk that
never follows symlinks; possibly already made while the scan was starting). Large trees are
shared between forked processes (:mod:`parallel`): forking costs a few ms, so small scans stay
in-process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from claudesec.scan import parallel
from claudesec.scan.model import Finding, ScanStats
from claudesec.scan.paths import path_matches
from claudesec.scan.scanner import BlobScanner
from claudesec.scan.sources import listing
from claudesec.scan.sources.interface import Source

# Below this many files forking costs more than it saves.
PARALLEL_MIN_FILES = 1500
CHUNK_FILES = 64
# A sequential scan offers its progress every this many files (the drawer throttles).
PROGRESS_EVERY = 256


class DirectorySource(Source):
    name = "directory"

    def __init__(
        self, root: str = ".", *, use_git: bool = True, exclude: Sequence[str] = ()
    ) -> None:
        self.root = root
        self.use_git = use_git
        self.exclude = tuple(exclude)

    def files(self) -> list[tuple[str, str]]:
        """``(path to open, path to report)`` for every file to scan."""
        root = self.root
        if os.path.isfile(root) or os.path.islink(root):
            return [] if os.path.islink(root) else [(root, root)]
        listed = listing.take(root, use_git=self.use_git)
        if listed is None:
            listed = listing.list_files(root, use_git=self.use_git)
        exclude = self.exclude
        # os.path.join per file costs ~1 us, 5% of a 50,000-file walk that runs before any
        # worker starts: join by concatenation (same result for these relative paths).
        prefix = root if root.endswith(os.sep) else root + os.sep
        return [
            (prefix + rel, rel) for rel in listed if not (exclude and path_matches(rel, exclude))
        ]

    def scan(self, scanner: BlobScanner, *, jobs: int = 1) -> list[Finding]:
        files = self.files()
        if jobs > 1 and len(files) >= PARALLEL_MIN_FILES and parallel.can_fork():
            return self._scan_parallel(files, scanner, jobs)
        findings: list[Finding] = []
        progress = scanner.progress
        total = len(files)
        for start in range(0, total, PROGRESS_EVERY):
            if progress is not None:
                progress(start, total, "files")
            findings.extend(scanner.scan_files(files[start : start + PROGRESS_EVERY]))
        if progress is not None:
            progress(total, total, "files")
        findings.sort(key=lambda f: (f.path, f.line, f.column))
        return findings

    def _scan_parallel(
        self, files: list[tuple[str, str]], scanner: BlobScanner, jobs: int
    ) -> list[Finding]:
        size = max(CHUNK_FILES, -(-len(files) // parallel.MAX_CHUNKS))
        chunks = [files[i : i + size] for i in range(0, len(files), size)]

        def work(claim: parallel.Claim) -> tuple[list[Finding], ScanStats]:
            share = scanner.fresh()
            found: list[Finding] = []
            while (index := claim()) is not None:
                found.extend(share.scan_files(chunks[index]))
            return found, share.stats

        progress = scanner.progress
        total = len(files)
        on_claimed = (
            (lambda claimed: progress(min(claimed * size, total), total, "files"))
            if progress is not None
            else None
        )
        findings: list[Finding] = []
        for found, stats in parallel.share(len(chunks), jobs, work, on_claimed):
            findings.extend(found)
            scanner.stats.merge(stats)
        if progress is not None:
            progress(total, total, "files")
        findings.sort(key=lambda f: (f.path, f.line, f.column))
        return findings

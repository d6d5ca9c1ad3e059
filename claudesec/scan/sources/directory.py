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
        prefix, listed = self._listed()
        return [(prefix + rel, rel) for rel in listed]

    def _listed(self) -> tuple[str, list[str]]:
        """The paths to report, and the prefix that makes each one a path to open."""
        root = self.root
        if os.path.isfile(root) or os.path.islink(root):
            return "", [] if os.path.islink(root) else [root]
        listed = listing.take(root, use_git=self.use_git)
        if listed is None:
            listed = listing.list_files(root, use_git=self.use_git)
        if self.exclude:
            listed = [rel for rel in listed if not path_matches(rel, self.exclude)]
        # Joined by concatenation (os.path.join costs ~1 us a file; the same result for these
        # relative paths), and only by whoever opens the file: the parent builds no list of
        # pairs before the workers start.
        return (root if root.endswith(os.sep) else root + os.sep), listed

    def scan(self, scanner: BlobScanner, *, jobs: int = 1) -> list[Finding]:
        prefix, listed = self._listed()
        if jobs > 1 and len(listed) >= PARALLEL_MIN_FILES and parallel.can_fork():
            return self._scan_parallel(prefix, listed, scanner, jobs)
        findings: list[Finding] = []
        progress = scanner.progress
        total = len(listed)
        for start in range(0, total, PROGRESS_EVERY):
            if progress is not None:
                progress(start, total, "files")
            block = listed[start : start + PROGRESS_EVERY]
            findings.extend(scanner.scan_files((prefix + rel, rel) for rel in block))
        if progress is not None:
            progress(total, total, "files")
        findings.sort(key=lambda f: (f.path, f.line, f.column))
        return findings

    def _scan_parallel(
        self, prefix: str, listed: list[str], scanner: BlobScanner, jobs: int
    ) -> list[Finding]:
        total = len(listed)
        size = max(CHUNK_FILES, -(-total // parallel.MAX_CHUNKS))

        def work(claim: parallel.Claim) -> tuple[list[Finding], ScanStats]:
            share = scanner.fresh()
            found: list[Finding] = []
            while (index := claim()) is not None:
                block = listed[index * size : (index + 1) * size]
                found.extend(share.scan_files((prefix + rel, rel) for rel in block))
            return found, share.stats

        progress = scanner.progress
        on_claimed = (
            (lambda claimed: progress(min(claimed * size, total), total, "files"))
            if progress is not None
            else None
        )
        findings: list[Finding] = []
        for found, stats in parallel.share(-(-total // size), jobs, work, on_claimed):
            findings.extend(found)
            scanner.stats.merge(stats)
        if progress is not None:
            progress(total, total, "files")
        findings.sort(key=lambda f: (f.path, f.line, f.column))
        return findings

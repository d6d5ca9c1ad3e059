"""A directory tree (or single file) on disk.

Which files are read is :mod:`listing`'s job (``git ls-files`` in a work tree, else a walk that
never follows symlinks; often started while the scan itself was starting, and still growing
when the scan begins: a progress line then counts against the paths listed so far). Large trees
are shared between forked processes (:mod:`parallel`): forking costs a few ms, so small scans
stay in-process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

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

Results = list[tuple[list[Finding], ScanStats]]


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
        """The prefix that makes a reported path one to open, and the paths to report."""
        root = self.root
        if os.path.isfile(root) or os.path.islink(root):
            return "", [] if os.path.islink(root) else [root]
        listed = listing.take(root, use_git=self.use_git)
        if listed is None:
            listed = listing.list_files(root, use_git=self.use_git)
        return self._prefix(), self._kept(listed)

    def _prefix(self) -> str:
        # Joined by concatenation (os.path.join costs ~1 us a file; the same result for these
        # relative paths), and only by whoever opens the file: no list of pairs is built
        # before the workers start.
        return self.root if self.root.endswith(os.sep) else self.root + os.sep

    def _kept(self, listed: list[str]) -> list[str]:
        exclude = self.exclude
        return [rel for rel in listed if not path_matches(rel, exclude)] if exclude else listed

    def scan(self, scanner: BlobScanner, *, jobs: int = 1) -> list[Finding]:
        if jobs > 1 and parallel.can_fork():
            growing = listing.take_stream(self.root, use_git=self.use_git)
            if growing is not None:
                with growing:
                    results = self._scan_growing(growing, scanner, jobs)
                if results is not None:
                    return _merged(results, scanner)
        prefix, listed = self._listed()
        if jobs > 1 and len(listed) >= PARALLEL_MIN_FILES and parallel.can_fork():
            return _merged(self._scan_parallel(prefix, listed, scanner, jobs), scanner)
        return _merged([(self._scan_serial(prefix, listed, scanner), ScanStats())], scanner)

    def _scan_serial(self, prefix: str, listed: list[str], scanner: BlobScanner) -> list[Finding]:
        findings: list[Finding] = []
        progress = scanner.progress
        total = len(listed)
        for start in range(0, total, PROGRESS_EVERY):
            if progress is not None:
                progress(start, total, "files")
            findings.extend(_scan(scanner, prefix, listed[start : start + PROGRESS_EVERY]))
        if progress is not None:
            progress(total, total, "files")
        return findings

    def _scan_parallel(
        self, prefix: str, listed: list[str], scanner: BlobScanner, jobs: int
    ) -> Results:
        total = len(listed)
        size = max(CHUNK_FILES, -(-total // parallel.MAX_CHUNKS))

        def work(claim: parallel.Claim) -> tuple[list[Finding], ScanStats]:
            share = scanner.fresh()
            found: list[Finding] = []
            while (index := claim()) is not None:
                found.extend(_scan(share, prefix, listed[index * size : (index + 1) * size]))
            return found, share.stats

        progress = scanner.progress
        on_claimed = (
            (lambda claimed: progress(min(claimed * size, total), total, "files"))
            if progress is not None
            else None
        )
        results = parallel.share(-(-total // size), jobs, work, on_claimed)
        if progress is not None:
            progress(total, total, "files")
        return results

    def _scan_growing(
        self, growing: listing.Listing, scanner: BlobScanner, jobs: int
    ) -> Results | None:
        """Scan chunks of the listing as they come; None, with nothing counted, when the
        listing did not complete (the caller lists again in-process)."""
        prefix = self._prefix()
        first: list[str] = []
        while len(first) < PARALLEL_MIN_FILES and (chunk := growing.claim()) is not None:
            first.extend(chunk)
        if len(first) < PARALLEL_MIN_FILES:  # the listing ended: a small tree
            if not growing.completed():
                return None
            return [(self._scan_serial(prefix, self._kept(first), scanner), ScanStats())]
        parent = os.getpid()

        def work() -> tuple[list[Finding], ScanStats]:
            share = scanner.fresh()
            found = _scan(share, prefix, self._kept(first)) if os.getpid() == parent else []
            while (chunk := growing.claim()) is not None:
                found.extend(_scan(share, prefix, self._kept(chunk)))
            return found, share.stats

        progress = scanner.progress

        def started() -> Callable[[], None] | None:
            # Of the paths listed so far: the total grows until the listing ends.
            if progress is None:
                return None
            return parallel.Ticker(lambda: progress(*growing.tally(), "files")).stop

        results = parallel.run(jobs, work, started)
        if not growing.completed():
            return None
        if progress is not None:
            _, total = growing.tally()
            progress(total, total, "files")
        return results


def _scan(scanner: BlobScanner, prefix: str, paths: Iterable[str]) -> list[Finding]:
    return scanner.scan_files((prefix + rel, rel) for rel in paths)


def _merged(results: Results, scanner: BlobScanner) -> list[Finding]:
    """Every process's findings in path order; their counters added to ``scanner``'s."""
    findings: list[Finding] = []
    for found, stats in results:
        findings.extend(found)
        scanner.stats.merge(stats)
    findings.sort(key=lambda f: (f.path, f.line, f.column))
    return findings

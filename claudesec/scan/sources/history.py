"""Every commit reachable from the refs (``--history``), each blob scanned once.

One ``git log --raw`` pass lists, per commit, the blobs it introduced (first-parent diffs, so a
blob that only exists in a merge result is still seen) with the commit's author and date; one
``git cat-file --batch`` then streams each distinct blob once. A finding is attributed to the
oldest commit that introduced its blob. Measured against ``git log -p`` parsing (what
gitleaks does) this reads each blob once instead of re-diffing it for every commit that touches
the file, and needs no patch parsing. Blobs are requested in the reverse of the order git
stores them (``_git.start_pack_order``), and a long history is shared between forked processes, each
with its own ``cat-file``: inflating objects is most of the CPU a history scan costs.

The report names each distinct secret once (``--all-occurrences``: once per blob holding it):
the commit that introduced it, the newest commit whose tree still has it, whether HEAD has it,
and how many commits carry it. Those come from the same ``git log --raw`` listing (each path's
sequence of blob changes, in the log's order) and one ``git ls-tree`` of HEAD, so they cost no
extra pass over the objects. With several branches the count follows the log's linear order of
commits, an approximation of the commits whose trees hold the secret.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence

from claudesec.scan import parallel
from claudesec.scan.model import CommitInfo, Finding, HistorySpan, ScanStats, Skipped, SkipReason
from claudesec.scan.paths import path_matches
from claudesec.scan.scanner import BlobScanner
from claudesec.scan.sources._git import (
    CatFile,
    cat_blobs,
    read_pack_order,
    run_git,
    start_pack_order,
)
from claudesec.scan.sources.interface import Source

_NULL_SHA = b"0" * 40
_COMMIT_MARK = b"\x01"
_SKIP_MODES = (b"120000", b"160000")  # symlinks and submodules carry no file content
# Below this many blobs one process (with git inflating beside it) is faster than forking.
PARALLEL_MIN_BLOBS = 2000
# Blobs per request to a worker's cat-file: 41-byte names, well under one pipe buffer.
CHUNK_BLOBS = 256
# A sequential scan offers its progress every this many blobs (the drawer throttles).
PROGRESS_EVERY = 256
CHUNKS_PER_JOB = 4


class HistorySource(Source):
    name = "history"

    def __init__(
        self,
        cwd: str = ".",
        *,
        since: str | None = None,
        branches: Sequence[str] = (),
        exclude: Sequence[str] = (),
        all_occurrences: bool = False,
    ) -> None:
        self.root = cwd
        self.since = since
        self.branches = tuple(branches)
        self.exclude = tuple(exclude)
        self.all_occurrences = all_occurrences
        self.commit_count = 0
        # Filled by blobs(): commits newest first, and each path's changes as (index into
        # commits, new blob sha or None when deleted), newest first.
        self.commits: list[CommitInfo] = []
        self.changes: dict[str, list[tuple[int, bytes | None]]] = defaultdict(list)

    def blobs(self) -> dict[bytes, tuple[str, CommitInfo]]:
        """Each distinct blob sha -> (path, oldest commit that introduced it)."""
        args = [
            "log",
            "--format=%x01%H%x00%an%x00%ae%x00%aI",
            "--raw",
            "--no-renames",
            "--no-abbrev",
            "-z",
            "--diff-merges=first-parent",
            "--root",
        ]
        if self.since:
            args.append(f"--since={self.since}")
        if self.branches:
            args.extend(self.branches)
            args.append("--")
        else:
            args.append("--all")
        out = run_git(args, self.root)
        blobs: dict[bytes, tuple[str, CommitInfo]] = {}
        changes = self.changes
        commits = self.commits
        tokens = out.split(b"\0")
        commit: CommitInfo | None = None
        i = 0
        count = len(tokens)
        while i < count:
            token = tokens[i].lstrip(b"\n")
            i += 1
            if token.startswith(_COMMIT_MARK):
                if i + 2 >= count:
                    break
                commit = CommitInfo(
                    sha=token[1:].decode("ascii"),
                    author=tokens[i].decode("utf-8", "replace"),
                    email=tokens[i + 1].decode("utf-8", "replace"),
                    date=tokens[i + 2].decode("ascii", "replace"),
                )
                commits.append(commit)
                self.commit_count += 1
                i += 3
            elif token.startswith(b":") and commit is not None:
                path = tokens[i].decode("utf-8", "surrogateescape") if i < count else ""
                i += 1
                fields = token[1:].split(b" ")
                if len(fields) < 5:
                    continue
                new_mode, new_sha, status = fields[1], fields[3], fields[4]
                if status.startswith(b"D") or new_sha == _NULL_SHA or new_mode in _SKIP_MODES:
                    changes[path].append((self.commit_count - 1, None))
                    continue
                changes[path].append((self.commit_count - 1, new_sha))
                # git log lists newest first: later sightings are older commits.
                blobs[new_sha] = (path, commit)
        return blobs

    def scan(self, scanner: BlobScanner, *, jobs: int = 1) -> list[Finding]:
        listing = start_pack_order(self.root)
        try:
            blobs = self.blobs()
        except BaseException:
            listing.kill()
            listing.communicate()
            raise
        stored = read_pack_order(listing)
        exclude = self.exclude
        scanner.stats.commits += self.commit_count
        wanted: list[bytes] = []
        for sha, (path, commit) in blobs.items():
            if exclude and path_matches(path, exclude):
                continue
            size = stored.get(sha, (0, 0))[1]
            if scanner.max_file_size and size > scanner.max_file_size:
                # Known from the object index: never inflated, never sent through the pipe.
                scanner.stats.skipped.append(
                    Skipped(f"{path}@{commit.sha[:12]}", SkipReason.TOO_LARGE)
                )
                scanner.stats.warnings.append(
                    f"{path}@{commit.sha[:12]}: skipped, over scan.max_file_size_mb"
                )
                continue
            wanted.append(sha)
        end = len(stored)
        wanted.sort(key=lambda sha: -stored.get(sha, (end, 0))[0])
        found: list[tuple[bytes, Finding]]
        if jobs > 1 and len(wanted) >= PARALLEL_MIN_BLOBS and parallel.can_fork():
            found = self._scan_parallel(wanted, blobs, scanner, jobs)
        else:
            found = []
            progress = scanner.progress
            total = len(wanted)
            for done, (sha, data) in enumerate(cat_blobs(self.root, wanted)):
                if progress is not None and not done % PROGRESS_EVERY:
                    progress(done, total, "blobs")
                if data is not None:
                    found.extend((sha, f) for f in _scan_blob(scanner, data, *blobs[sha]))
        if scanner.progress is not None:
            scanner.progress(len(wanted), len(wanted), "blobs")
        findings = [f for _, f in found] if self.all_occurrences else self._distinct(found)
        findings.sort(key=lambda f: (f.commit.date if f.commit else "", f.path, f.line))
        return findings

    def _distinct(self, found: list[tuple[bytes, Finding]]) -> list[Finding]:
        """One finding per distinct secret, with how long it lived (:class:`HistorySpan`)."""
        if not found:
            return []
        index = {c.sha: i for i, c in enumerate(self.commits)}
        oldest = len(self.commits)
        groups: dict[tuple[str, str], list[tuple[bytes, Finding]]] = defaultdict(list)
        for sha, finding in found:
            groups[(finding.rule_id, finding.secret)].append((sha, finding))
        wanted = {sha for sha, _ in found}
        # Each path whose history holds one of these blobs, with its changes.
        paths_of: dict[bytes, set[str]] = defaultdict(set)
        for path, events in self.changes.items():
            for _, changed in events:
                if changed is not None and changed in wanted:
                    paths_of[changed].add(path)
        head = _head_blobs(self.root)
        findings: list[Finding] = []
        for members in groups.values():
            shas = {sha for sha, _ in members}
            first = max(
                (f for _, f in members),
                key=lambda f: index.get(f.commit.sha, oldest) if f.commit else oldest,
            )
            paths = set().union(*(paths_of[sha] for sha in shas))
            intervals: list[tuple[int, int]] = []  # (newest index, oldest index), inclusive
            for path in paths:
                intervals.extend(_intervals(self.changes[path], shas))
            carried = _union_size(intervals)
            newest = min((lo for lo, _ in intervals), default=0)
            span = HistorySpan(
                last=self.commits[newest] if self.commits else first.commit,  # type: ignore[arg-type]
                commits=max(carried, 1),
                in_tree=bool(shas & head),
                paths=max(len(paths), 1),
            )
            findings.append(dataclasses.replace(first, history=span))
        return findings

    def _scan_parallel(
        self,
        wanted: list[bytes],
        blobs: dict[bytes, tuple[str, CommitInfo]],
        scanner: BlobScanner,
        jobs: int,
    ) -> list[tuple[bytes, Finding]]:
        # Long contiguous runs of the storage order, so each worker's delta-base cache keeps
        # working: a delta's base is usually stored close to it. A few runs per worker still
        # let a fast worker take more.
        size = max(CHUNK_BLOBS, -(-len(wanted) // (jobs * CHUNKS_PER_JOB)))
        chunks = [wanted[i : i + size] for i in range(0, len(wanted), size)]
        root = self.root

        def work(claim: parallel.Claim) -> tuple[list[tuple[bytes, Finding]], ScanStats]:
            share = scanner.fresh()
            found: list[tuple[bytes, Finding]] = []
            with CatFile(root) as cat:
                while (index := claim()) is not None:
                    chunk = chunks[index]
                    for i in range(0, len(chunk), CHUNK_BLOBS):
                        for sha, data in cat.fetch(chunk[i : i + CHUNK_BLOBS]):
                            if data is not None:
                                found.extend((sha, f) for f in _scan_blob(share, data, *blobs[sha]))
            return found, share.stats

        progress = scanner.progress
        total = len(wanted)
        on_claimed = (
            (lambda claimed: progress(min(claimed * size, total), total, "blobs"))
            if progress is not None
            else None
        )
        findings: list[tuple[bytes, Finding]] = []
        for found, stats in parallel.share(len(chunks), jobs, work, on_claimed):
            findings.extend(found)
            scanner.stats.merge(stats)
        return findings


def _scan_blob(scanner: BlobScanner, data: bytes, path: str, commit: CommitInfo) -> list[Finding]:
    scanner.stats.blobs += 1
    return scanner.scan_bytes(path, data, commit)


def _intervals(events: list[tuple[int, bytes | None]], shas: set[bytes]) -> list[tuple[int, int]]:
    """Runs of commits (newest index, oldest index) during which the path held one of
    ``shas``. ``events`` are newest first; a path keeps its blob until its next change."""
    runs: list[tuple[int, int]] = []
    newer = -1  # index of the next (newer) change of this path; -1: none, it lasts to the tip
    for at, sha in events:
        if sha in shas:
            runs.append((newer + 1, at))
        newer = at
    return runs


def _union_size(intervals: list[tuple[int, int]]) -> int:
    total, reach = 0, -1
    for lo, hi in sorted(intervals):
        if hi <= reach:
            continue
        total += hi - max(lo, reach + 1) + 1
        reach = hi
    return total


def _head_blobs(cwd: str) -> set[bytes]:
    """Blob ids in HEAD's tree (empty without a HEAD)."""
    out = run_git(["ls-tree", "-r", "-z", "--full-tree", "HEAD"], cwd, check=False)
    blobs: set[bytes] = set()
    for entry in out.split(b"\0"):
        meta = entry.split(b"\t", 1)[0].split(b" ")
        if len(meta) == 3 and meta[1] == b"blob":
            blobs.add(meta[2])
    return blobs

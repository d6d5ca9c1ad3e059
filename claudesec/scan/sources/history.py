"""Every commit reachable from the refs (``--history``), each blob scanned once.

One ``git log --raw`` pass lists, per commit, the blobs it introduced (first-parent diffs, so a
blob that only exists in a merge result is still seen) with the commit's author and date; one
``git cat-file --batch`` then streams each distinct blob once. A finding is attributed to the
oldest commit that introduced its blob. Measured against ``git log -p`` parsing (what
gitleaks does) this reads each blob once instead of re-diffing it for every commit that touches
the file, and needs no patch parsing. Blobs are requested in the reverse of the order git
stores them (``_git.start_pack_order``), and a long history is shared between forked processes, each
with its own ``cat-file``: inflating objects is most of the CPU a history scan costs.
"""

from __future__ import annotations

from collections.abc import Sequence

from claudesec.scan import parallel
from claudesec.scan.model import CommitInfo, Finding, ScanStats
from claudesec.scan.scanner import BlobScanner, path_matches
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
    ) -> None:
        self.root = cwd
        self.since = since
        self.branches = tuple(branches)
        self.exclude = tuple(exclude)
        self.commit_count = 0

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
                    continue
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
                scanner.stats.warnings.append(
                    f"{path}@{commit.sha[:12]}: skipped, over scan.max_file_size_mb"
                )
                continue
            wanted.append(sha)
        end = len(stored)
        wanted.sort(key=lambda sha: -stored.get(sha, (end, 0))[0])
        if jobs > 1 and len(wanted) >= PARALLEL_MIN_BLOBS and parallel.can_fork():
            findings = self._scan_parallel(wanted, blobs, scanner, jobs)
        else:
            findings = []
            for sha, data in cat_blobs(self.root, wanted):
                if data is not None:
                    findings.extend(_scan_blob(scanner, data, *blobs[sha]))
        findings.sort(key=lambda f: (f.commit.date if f.commit else "", f.path, f.line))
        return findings

    def _scan_parallel(
        self,
        wanted: list[bytes],
        blobs: dict[bytes, tuple[str, CommitInfo]],
        scanner: BlobScanner,
        jobs: int,
    ) -> list[Finding]:
        # Long contiguous runs of the storage order, so each worker's delta-base cache keeps
        # working: a delta's base is usually stored close to it. A few runs per worker still
        # let a fast worker take more.
        size = max(CHUNK_BLOBS, -(-len(wanted) // (jobs * CHUNKS_PER_JOB)))
        chunks = [wanted[i : i + size] for i in range(0, len(wanted), size)]
        root = self.root

        def work(claim: parallel.Claim) -> tuple[list[Finding], ScanStats]:
            share = scanner.fresh()
            found: list[Finding] = []
            with CatFile(root) as cat:
                while (index := claim()) is not None:
                    chunk = chunks[index]
                    for i in range(0, len(chunk), CHUNK_BLOBS):
                        for sha, data in cat.fetch(chunk[i : i + CHUNK_BLOBS]):
                            if data is not None:
                                found.extend(_scan_blob(share, data, *blobs[sha]))
            return found, share.stats

        findings: list[Finding] = []
        for found, stats in parallel.share(len(chunks), jobs, work):
            findings.extend(found)
            scanner.stats.merge(stats)
        return findings


def _scan_blob(scanner: BlobScanner, data: bytes, path: str, commit: CommitInfo) -> list[Finding]:
    scanner.stats.blobs += 1
    return scanner.scan_bytes(path, data, commit)

"""Every commit reachable from the refs (``--history``), each blob scanned once.

One ``git log --raw`` pass lists, per commit, the blobs it introduced (first-parent diffs, so a
blob that only exists in a merge result is still seen) with the commit's author and date; one
``git cat-file --batch`` then streams each distinct blob once. A finding is attributed to the
oldest commit that introduced its blob. Measured against ``git log -p`` parsing (what
gitleaks does) this reads each blob once instead of re-diffing it for every commit that touches
the file, and needs no patch parsing.
"""

from __future__ import annotations

from collections.abc import Sequence

from claudesec.scan.model import CommitInfo, Finding
from claudesec.scan.scanner import BlobScanner, path_matches
from claudesec.scan.sources._git import cat_blobs, run_git
from claudesec.scan.sources.base import Source

_NULL_SHA = b"0" * 40
_COMMIT_MARK = b"\x01"
_SKIP_MODES = (b"120000", b"160000")  # symlinks and submodules carry no file content


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
        blobs = self.blobs()
        exclude = self.exclude
        wanted = [
            sha for sha, (path, _) in blobs.items() if not (exclude and path_matches(path, exclude))
        ]
        scanner.stats.commits += self.commit_count
        findings: list[Finding] = []
        for sha, data in cat_blobs(self.root, wanted):
            if data is None:
                continue
            path, commit = blobs[sha]
            scanner.stats.blobs += 1
            if scanner.max_file_size and len(data) > scanner.max_file_size:
                scanner.stats.warnings.append(
                    f"{path}@{commit.sha[:12]}: skipped, over scan.max_file_size_mb"
                )
                continue
            findings.extend(scanner.scan_bytes(path, data, commit))
        findings.sort(key=lambda f: (f.commit.date if f.commit else "", f.path, f.line))
        return findings

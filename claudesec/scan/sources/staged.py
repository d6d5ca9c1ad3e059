"""The git index (``--staged``): what the commit being made will contain, not the work tree.

This is the pre-commit path, so it is two git processes and nothing else: the staged names
from ``git diff --cached``, then every staged blob through one ``git cat-file --batch``.
"""

from __future__ import annotations

from collections.abc import Sequence

from claudesec.errors import GitError
from claudesec.scan.model import Finding, Skipped, SkipReason
from claudesec.scan.paths import path_matches
from claudesec.scan.scanner import BlobScanner
from claudesec.scan.sources._git import GitMissing, NotARepository, cat_blobs, repo_top, run_git
from claudesec.scan.sources.interface import Source


class StagedSource(Source):
    name = "staged"

    def __init__(self, cwd: str = ".", *, exclude: Sequence[str] = ()) -> None:
        self.root = cwd
        self.exclude = tuple(exclude)

    def staged_paths(self) -> list[str]:
        try:
            out = run_git(
                ["diff", "--cached", "--name-only", "-z", "--no-renames", "--diff-filter=d"],
                self.root,
            )
        except GitMissing:
            raise
        except GitError:
            # Outside a repository `git diff` turns into `diff --no-index` and rejects
            # --cached with a confusing message: say what is actually wrong.
            if repo_top(self.root) is None:
                raise NotARepository(
                    "--staged needs a git repository, and this is not inside one",
                    hint="run it in a repository, or scan a directory: claudesec scan PATH",
                ) from None
            raise
        paths = [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]
        return [p for p in paths if not (self.exclude and path_matches(p, self.exclude))]

    def scan(self, scanner: BlobScanner, *, jobs: int = 1) -> list[Finding]:
        paths = self.staged_paths()
        findings: list[Finding] = []
        if not paths:
            return findings
        # cat-file reads one name per line: a path with a newline cannot be asked for.
        odd = [p for p in paths if "\n" in p]
        for path in odd:
            scanner.stats.warnings.append(f"{path!r}: skipped, newline in the file name")
        wanted = [p for p in paths if "\n" not in p]
        names = [b":" + p.encode("utf-8", "surrogateescape") for p in wanted]
        for (_, data), path in zip(cat_blobs(self.root, names), wanted, strict=False):
            if data is None:
                continue  # a submodule entry: no blob in this repository
            scanner.stats.files += 1
            if scanner.max_file_size and len(data) > scanner.max_file_size:
                scanner.stats.skipped.append(Skipped(path, SkipReason.TOO_LARGE))
                scanner.stats.warnings.append(f"{path}: skipped, over scan.max_file_size_mb")
                continue
            findings.extend(scanner.scan_bytes(path, data))
        return findings

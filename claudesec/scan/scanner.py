"""Turns buffers and files into findings: binary sniffing, size limits, chunked reads of huge
files, inline ``claudesec:allow`` and ``scan.allow_paths``. Sources call it; it holds the engine.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from fnmatch import fnmatchcase

from claudesec.detect.engine import BINARY_SNIFF, Engine, Located, is_binary
from claudesec.scan.model import CommitInfo, Finding, ScanStats, Skipped

# Files up to this size are read whole; larger ones are streamed in blocks with an overlap, so
# memory stays bounded whatever the file size.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
WHOLE_READ_LIMIT = 32 * 1024 * 1024
# Files larger than this are sniffed for binary content before they are read whole.
SNIFF_FIRST = 64 * 1024
BLOCK_SIZE = 16 * 1024 * 1024


def path_matches(path: str, patterns: Sequence[str]) -> bool:
    """Whether a repo-relative posix path matches any glob: ``*.md``, ``tests/**``, ``vendor``.

    A pattern also matches everything below a directory it names, at any depth.
    """
    for raw in patterns:
        pattern = raw.strip().lstrip("/").removeprefix("./")
        if not pattern:
            continue
        stem = pattern.rstrip("/").removesuffix("/**")
        if (
            fnmatchcase(path, pattern)
            or fnmatchcase(path, stem + "/*")
            or fnmatchcase(path, "*/" + pattern)
            or fnmatchcase(path, "*/" + stem + "/*")
        ):
            return True
    return False


class BlobScanner:
    """Scans one buffer or file at a time and accumulates :class:`ScanStats`."""

    def __init__(
        self,
        engine: Engine,
        *,
        allow_paths: Sequence[str] = (),
        max_file_size: int = 0,
    ) -> None:
        self.engine = engine
        self.allow_paths = tuple(allow_paths)
        self.max_file_size = max_file_size
        self.stats = ScanStats()

    def fresh(self) -> BlobScanner:
        """A scanner with the same settings and its own, empty counters (one per worker)."""
        return BlobScanner(
            self.engine, allow_paths=self.allow_paths, max_file_size=self.max_file_size
        )

    def scan_bytes(self, path: str, data: bytes, commit: CommitInfo | None = None) -> list[Finding]:
        """Findings in one in-memory buffer (a blob, stdin, a small file)."""
        if is_binary(data):
            self.stats.skipped.append(Skipped(path, "binary"))
            return []
        self.stats.bytes += len(data)
        return self._findings(path, self.engine.scan(data), commit)

    def scan_stream(
        self, path: str, blocks: Iterable[bytes], commit: CommitInfo | None = None
    ) -> list[Finding]:
        """Findings in a stream of blocks (huge files, stdin), with bounded memory."""
        iterator = iter(blocks)
        first = next(iterator, b"")
        if is_binary(first):
            self.stats.skipped.append(Skipped(path, "binary"))
            return []

        def counted() -> Iterator[bytes]:
            block: bytes | None = first
            while block:
                self.stats.bytes += len(block)
                yield block
                block = next(iterator, None)

        return self._findings(path, list(self.engine.scan_chunks(counted())), commit)

    def scan_file(self, fs_path: str, rel_path: str) -> list[Finding]:
        """Findings in a file on disk; unreadable files become warnings, symlinks are skipped."""
        try:
            # O_NONBLOCK: opening a FIFO found in the tree must not hang the scan.
            fd = os.open(fs_path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except OSError as exc:
            if _is_symlink(fs_path):
                return []  # never followed: the target may be outside the tree
            self._unreadable(rel_path, exc)
            return []
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return []
            size = info.st_size
            if self.max_file_size and size > self.max_file_size:
                self.stats.skipped.append(Skipped(rel_path, "too large"))
                self.stats.warnings.append(
                    f"{rel_path}: skipped, {size / 1048576:.0f} MB is over scan.max_file_size_mb"
                )
                return []
            self.stats.files += 1
            if size <= WHOLE_READ_LIMIT:
                if size > SNIFF_FIRST:
                    # Most bytes of a source tree are binaries (shared objects, wheels, images):
                    # judge by the head before reading the rest.
                    head = os.read(fd, BINARY_SNIFF)
                    if b"\0" in head:
                        self.stats.skipped.append(Skipped(rel_path, "binary"))
                        return []
                    return self.scan_bytes(rel_path, head + _read_all(fd, size - len(head)))
                return self.scan_bytes(rel_path, _read_all(fd, size))
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return self.scan_stream(rel_path, iter(lambda: handle.read(BLOCK_SIZE), b""))
        except OSError as exc:
            self._unreadable(rel_path, exc)
            return []
        finally:
            os.close(fd)

    def _unreadable(self, rel_path: str, exc: OSError) -> None:
        self.stats.skipped.append(Skipped(rel_path, "unreadable"))
        self.stats.warnings.append(f"{rel_path}: cannot read ({exc.strerror or exc})")

    def _findings(
        self, path: str, located: Sequence[Located], commit: CommitInfo | None
    ) -> list[Finding]:
        if not located:
            return []
        path_allowed = bool(self.allow_paths) and path_matches(path, self.allow_paths)
        findings: list[Finding] = []
        for item in located:
            if item.allowed:
                self.stats.suppressed_inline += 1
                continue
            if path_allowed:
                self.stats.suppressed_path += 1
                continue
            if item.unknown_allow_ids:
                names = ", ".join(item.unknown_allow_ids)
                self.stats.warnings.append(
                    f"{path}:{item.line}: claudesec:allow names unknown rule id(s) {names}, so "
                    "the finding is reported; write `claudesec:allow <rule-id> -- reason`"
                )
            hit = item.hit
            findings.append(
                Finding(
                    rule_id=hit.detector.id,
                    kind=hit.kind,
                    severity=hit.detector.severity.value,
                    path=path,
                    line=item.line,
                    column=item.column,
                    fix=hit.detector.fix,
                    secret=hit.secret.decode("utf-8", "surrogateescape"),
                    commit=commit,
                    related=hit.related.decode("ascii", "replace") if hit.related else None,
                )
            )
        return findings


def _read_all(fd: int, size: int) -> bytes:
    # os.read straight into bytes: no file object per file, which matters over 30k small files.
    # One read of one byte more than fstat said: a short read is the end of a regular file, and
    # a full one means the file grew meanwhile, so read on.
    data = os.read(fd, size + 1)
    if len(data) > size:
        data += _drain(fd)
    return data


def _drain(fd: int) -> bytes:
    parts: list[bytes] = []
    while True:
        more = os.read(fd, 1 << 20)
        if not more:
            return b"".join(parts)
        parts.append(more)


def _is_symlink(path: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False

"""Turns buffers and files into findings: binary sniffing, size limits, chunked reads of huge
files, inline ``claudesec:allow`` and ``scan.allow_paths``. Sources call it; it holds the engine.

What looks binary is decoded only when it is an archive or UTF-16 text, notebooks are read cell
by cell, and base64 blobs the engine flagged are decoded and scanned again
(:mod:`claudesec.scan.decode`); a finding inside an archive is reported as
``outer.zip!inner/path``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence

from claudesec.detect.engine import BINARY_SNIFF, Engine, Hit, Located, is_binary
from claudesec.scan import decode
from claudesec.scan.custom_rules import CustomRule, FindingFilter
from claudesec.scan.examples import HELD_RULES, in_docstring, is_example_path
from claudesec.scan.model import CommitInfo, Finding, ScanStats, Skipped, SkipReason
from claudesec.scan.paths import path_matches
from claudesec.scan.progress import ProgressFn

# Files up to this size are read whole; larger ones are streamed in blocks with an overlap, so
# memory stays bounded whatever the file size.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
WHOLE_READ_LIMIT = 32 * 1024 * 1024
# Files larger than this are sniffed for binary content before they are read whole.
SNIFF_FIRST = 64 * 1024
BLOCK_SIZE = 16 * 1024 * 1024
# scan_files joins small text files into buffers of about this size (or this many files) for
# one prefilter pass: big enough to amortise a pass, small enough to stay in cache.
_BATCH_BYTES = 256 * 1024
_BATCH_FILES = 256


class BlobScanner:
    """Scans one buffer or file at a time and accumulates :class:`ScanStats`."""

    def __init__(
        self,
        engine: Engine,
        *,
        allow_paths: Sequence[str] = (),
        max_file_size: int = 0,
        limits: decode.Limits | None = None,
        path_filter: FindingFilter | None = None,
        path_rules: Sequence[CustomRule] = (),
        hold_examples: bool = True,
    ) -> None:
        self.engine = engine
        # Name-based findings in tests, fixtures and docs are counted, not reported
        # (:mod:`claudesec.scan.examples`).
        self.hold_examples = hold_examples
        self.allow_paths = tuple(allow_paths)
        self.max_file_size = max_file_size
        self.limits = limits or decode.Limits()
        # Custom rules with path conditions and path allowlists: whether a hit stands at a path.
        self.path_filter = path_filter
        # gitleaks rules with a path and no regex: the file's name is the finding.
        self.path_rules = tuple(path_rules)
        self.stats = ScanStats()
        # Called by sources as they go (done, total, unit); only the parent's scanner has one.
        self.progress: ProgressFn | None = None

    def fresh(self) -> BlobScanner:
        """A scanner with the same settings and its own, empty counters (one per worker)."""
        return BlobScanner(
            self.engine,
            allow_paths=self.allow_paths,
            max_file_size=self.max_file_size,
            limits=self.limits,
            path_filter=self.path_filter,
            path_rules=self.path_rules,
            hold_examples=self.hold_examples,
        )

    def scan_bytes(self, path: str, data: bytes, commit: CommitInfo | None = None) -> list[Finding]:
        """Findings in one in-memory buffer (a blob, stdin, a small file)."""
        return self._scan(path, data, commit, 0, None)

    def _scan(
        self,
        path: str,
        data: bytes,
        commit: CommitInfo | None,
        depth: int,
        budget: decode.Budget | None,
    ) -> list[Finding]:
        named = self._path_findings(path, commit) if self.path_rules else []
        kind = decode.archive_kind(data)
        if named:
            return named + self._scan_content(path, data, commit, depth, budget, kind)
        return self._scan_content(path, data, commit, depth, budget, kind)

    def _scan_content(
        self,
        path: str,
        data: bytes,
        commit: CommitInfo | None,
        depth: int,
        budget: decode.Budget | None,
        kind: str | None,
    ) -> list[Finding]:
        if kind is not None:
            return self._archive(path, data, kind, commit, depth, budget)
        if is_binary(data):
            text = decode.utf16_text(data)
            if text is None:
                self.stats.skipped.append(Skipped(path, SkipReason.BINARY))
                return []
            data = text
        self.stats.bytes += len(data)
        findings = self._findings(path, self.engine.scan(data), commit, data)
        if path.endswith(".ipynb"):
            findings.extend(self._notebook(path, data, commit, findings))
        return findings

    def _archive(
        self,
        path: str,
        data: bytes,
        kind: str,
        commit: CommitInfo | None,
        depth: int,
        budget: decode.Budget | None,
    ) -> list[Finding]:
        if depth >= self.limits.max_depth:
            self._limit(path, f"archive nested deeper than {self.limits.max_depth} levels")
            return []
        # One budget per top-level file: when it runs out, the whole file stops there.
        top = budget is None
        budget = budget if budget is not None else decode.Budget(self.limits)
        findings: list[Finding] = []
        try:
            for inner, content in decode.expand(path, data, kind, budget):
                findings.extend(self._scan(f"{path}!{inner}", content, commit, depth + 1, budget))
        except decode.LimitHit as exc:
            if not top:
                raise
            self._limit(path, str(exc))
        except decode.ArchiveError as exc:
            self.stats.skipped.append(Skipped(path, SkipReason.UNREADABLE))
            self.stats.warnings.append(f"{path}: cannot read this {kind} archive ({exc})")
        return findings

    def _limit(self, path: str, why: str) -> None:
        self.stats.skipped.append(Skipped(path, SkipReason.LIMIT))
        self.stats.warnings.append(f"{path}: not scanned further, {why} (a zip bomb?)")

    def _notebook(
        self, path: str, data: bytes, commit: CommitInfo | None, raw: Sequence[Finding]
    ) -> list[Finding]:
        """Secrets a notebook's JSON hides from the raw scan (split or escaped in cells)."""
        # The raw JSON holds a multi-line secret with its line breaks escaped (`\n`): compare
        # secrets without line breaks, so one key is one finding.
        seen = {(f.rule_id, _flat(f.secret)) for f in raw}
        found: list[Finding] = []
        for label, text in decode.notebook_cells(data):
            located = self.engine.scan(text)
            for finding in self._findings(f"{path}!{label}", located, commit, text):
                key = (finding.rule_id, _flat(finding.secret))
                if key not in seen:
                    seen.add(key)
                    found.append(finding)
        return found

    def scan_stream(
        self, path: str, blocks: Iterable[bytes], commit: CommitInfo | None = None
    ) -> list[Finding]:
        """Findings in a stream of blocks (huge files, stdin), with bounded memory."""
        iterator = iter(blocks)
        first = next(iterator, b"")
        if decode.worth_decoding(first[:BINARY_SNIFF]):
            # An archive or UTF-16 text on a stream: decoding needs it whole, within the limit.
            parts, size = [first], len(first)
            for block in iterator:
                parts.append(block)
                size += len(block)
                if size > self.limits.max_bytes:
                    self._limit(path, f"over {self.limits.max_bytes // 1048576} MB to decode")
                    return []
            return self.scan_bytes(path, b"".join(parts), commit)
        if is_binary(first):
            self.stats.skipped.append(Skipped(path, SkipReason.BINARY))
            return []

        def counted() -> Iterator[bytes]:
            block: bytes | None = first
            while block:
                self.stats.bytes += len(block)
                yield block
                block = next(iterator, None)

        return self._findings(path, list(self.engine.scan_chunks(counted())), commit, None)

    def scan_file(self, fs_path: str, rel_path: str) -> list[Finding]:
        """Findings in a file on disk; unreadable files become warnings, symlinks are skipped."""
        read = self._read_file(fs_path, rel_path)
        return read if isinstance(read, list) else self.scan_bytes(rel_path, read)

    def scan_files(self, files: Iterable[tuple[str, str]]) -> list[Finding]:
        """:meth:`scan_file` for each ``(path to open, path to report)``, with the keyword
        prefilter run once over many small text files at a time.

        Most files of a tree hold no keyword at all; for those one joined hyperscan pass
        replaces a pass, a few function calls and a result list each (3-5% of a directory
        scan of the bench corpus, where system calls per file weigh more). A file with any
        keyword or gate hit, and every file the engine cannot vouch for this way (see
        :meth:`Engine.quiet_parts`), is scanned alone exactly as :meth:`scan_file` would.
        """
        findings: list[Finding] = []
        batch: list[tuple[str, bytes]] = []
        size = 0
        for fs_path, rel_path in files:
            read = self._read_file(fs_path, rel_path)
            if isinstance(read, list):
                findings.extend(read)
            elif not self._batchable(rel_path, read):
                findings.extend(self.scan_bytes(rel_path, read))
            else:
                batch.append((rel_path, read))
                size += len(read)
                if size >= _BATCH_BYTES or len(batch) >= _BATCH_FILES:
                    findings.extend(self._scan_batch(batch))
                    batch, size = [], 0
        findings.extend(self._scan_batch(batch))
        return findings

    def _batchable(self, rel_path: str, data: bytes) -> bool:
        # What _scan would do nothing special with: no path rule, no archive, no binary or
        # UTF-16 sniffing, no notebook cells.
        return (
            not self.path_rules
            and len(data) <= _BATCH_BYTES
            and decode.archive_kind(data) is None
            and not is_binary(data)
            and not rel_path.endswith(".ipynb")
        )

    def _scan_batch(self, batch: list[tuple[str, bytes]]) -> list[Finding]:
        if not batch:
            return []
        quiet = self.engine.quiet_parts([data for _, data in batch])
        findings: list[Finding] = []
        for index, (rel_path, data) in enumerate(batch):
            if quiet is not None and quiet[index]:
                self.stats.bytes += len(data)  # scanned: nothing in it can match
            else:
                findings.extend(self.scan_bytes(rel_path, data))
        return findings

    def _read_file(self, fs_path: str, rel_path: str) -> bytes | list[Finding]:
        """A regular file's whole content to scan; or, for a file that is skipped, streamed or
        unreadable, its findings (none, or what the stream held), the skip counted."""
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
                self.stats.skipped.append(Skipped(rel_path, SkipReason.TOO_LARGE))
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
                    if is_binary(head) and not decode.worth_decoding(head):
                        return self._binary(rel_path)
                    return head + _read_all(fd, size - len(head))
                data = _read_all(fd, size)
                # Settled here, as a larger file's head is above: what _scan would decide after
                # three more calls (a third of a tree's files are binaries).
                if is_binary(data) and not decode.worth_decoding(data):
                    return self._binary(rel_path)
                return data
            if decode.archive_kind(os.pread(fd, BINARY_SNIFF, 0)) is not None:
                return _read_all(fd, size)
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return self.scan_stream(rel_path, iter(lambda: handle.read(BLOCK_SIZE), b""))
        except OSError as exc:
            self._unreadable(rel_path, exc)
            return []
        finally:
            os.close(fd)

    def _binary(self, rel_path: str) -> list[Finding]:
        """A binary file not worth decoding: skipped, though a path-only rule still fires."""
        self.stats.skipped.append(Skipped(rel_path, SkipReason.BINARY))
        return self._path_findings(rel_path, None) if self.path_rules else []

    def _unreadable(self, rel_path: str, exc: OSError) -> None:
        self.stats.skipped.append(Skipped(rel_path, SkipReason.UNREADABLE))
        self.stats.warnings.append(f"{rel_path}: cannot read ({exc.strerror or exc})")

    def _path_findings(self, path: str, commit: CommitInfo | None) -> list[Finding]:
        return [
            Finding(
                rule_id=rule.id,
                kind=rule.description or f"custom rule {rule.id}",
                severity=rule.severity.value,
                path=path,
                line=1,
                column=1,
                fix=f"Remove this file from the repository (custom rule {rule.id}).",
                secret=path,
                commit=commit,
            )
            for rule in self.path_rules
            if rule.paths is not None and rule.paths(path)
        ]

    def _findings(
        self,
        path: str,
        located: Sequence[Located],
        commit: CommitInfo | None,
        data: bytes | None,
    ) -> list[Finding]:
        if not located:
            return []
        path_allowed = bool(self.allow_paths) and path_matches(path, self.allow_paths)
        path_filter = self.path_filter
        example = self.hold_examples and is_example_path(path)
        findings: list[Finding] = []
        # (index in findings, span of the text it came from, whether it was decoded): to keep
        # one finding per secret when a blob is both recognised encoded and decoded.
        spans: list[tuple[int, int, int, bool]] = []
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
            outer = item.hit
            if outer.detector.id in decode.DECODER_IDS:
                hits = [(h, f"{h.kind} (base64-encoded)") for h in self._decoded(outer, 1)]
            else:
                hits = [(outer, outer.kind)]
            for hit, kind in hits:
                sha = commit.sha if commit is not None else None
                buffer = data if hit is outer else None  # a decoded hit indexes its payload
                if path_filter is not None and not path_filter(hit, path, buffer, sha):
                    self.stats.suppressed_path += 1
                    continue
                if (
                    self.hold_examples
                    and hit.detector.id in HELD_RULES
                    and (example or (buffer is not None and in_docstring(path, buffer, hit.start)))
                ):
                    self.stats.held_examples += 1
                    continue
                spans.append((len(findings), outer.start, outer.end, hit is not outer))
                findings.append(
                    Finding(
                        rule_id=hit.detector.id,
                        kind=kind,
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
        if any(decoded for *_, decoded in spans):
            return _one_per_secret(findings, spans)
        return findings

    def _decoded(self, hit: Hit, depth: int) -> list[Hit]:
        """The secrets inside a base64 blob the engine flagged (encodings within encodings
        too, down to the archive depth limit)."""
        found: list[Hit] = []
        for _, payload in decode.base64_payloads(hit.detector.id, hit.secret):
            for inner in self.engine.find(payload):
                if inner.detector.id not in decode.DECODER_IDS:
                    found.append(inner)
                elif depth < self.limits.max_depth:
                    found.extend(self._decoded(inner, depth + 1))
        return found


def _one_per_secret(
    findings: list[Finding], spans: Sequence[tuple[int, int, int, bool]]
) -> list[Finding]:
    """One finding per secret where base64 blobs were decoded.

    Two decoders may read one blob (a ``*-data:`` field that starts like an encoded PEM), and a
    rule may recognise the blob encoded by its place (``client-key-data``, a docker ``auth``,
    a Secret manifest's ``data:``). The decoded credential is the one kept (it is what
    ``--verify`` can check); its kind names the encoded finding it was read from, and a finding
    whose every encoded value is such a decoded credential is dropped.
    """
    decoded = [(i, start, end) for i, start, end, was in spans if was]
    drop: set[int] = set()
    seen: dict[tuple[str, str], int] = {}
    for i, _, _ in decoded:
        key = (findings[i].rule_id, findings[i].secret)
        if key in seen:
            drop.add(i)
        else:
            seen[key] = i
    kept = [(i, start, end) for i, start, end in decoded if i not in drop]
    notes: dict[int, str] = {}
    for i, start, end, was in spans:
        if i in drop:
            continue
        # Decoded from text this finding overlaps.
        inner = [j for j, s, e in kept if j != i and s < end and start < e]
        if not inner:
            continue
        values = decode.encoded_values(findings[i].secret.encode("utf-8", "surrogateescape"))
        secrets = [findings[j].secret.encode("utf-8", "surrogateescape") for j in inner]
        if values and all(any(sec in value for sec in secrets) for value in values):
            drop.add(i)
            if not was:
                for j in inner:
                    notes.setdefault(j, findings[i].kind)
    out = []
    for i, finding in enumerate(findings):
        if i in notes:
            base = finding.kind.removesuffix(" (base64-encoded)")
            out.append(dataclasses.replace(finding, kind=f"{base} (base64-encoded, {notes[i]})"))
        elif i not in drop:
            out.append(finding)
    return out


_LINE_BREAKS = re.compile(r"\\[nr]|\s")


def _flat(secret: str) -> str:
    return _LINE_BREAKS.sub("", secret)


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

"""What a scan looks inside: archives, UTF-16 text, notebook cells and base64 blobs.

Decoding is lazy, so the directory-scan speed stays where it was: a file is opened up only when
its first bytes say it is an archive (zip, jar, whl, tar, gzip, bzip2, xz) or UTF-16 text, when
its name says it is a notebook, or when the engine's one prefilter pass saw a base64 blob in a
place credentials are kept base64-encoded (``client-key-data:``, docker ``"auth":``, a
Kubernetes ``data:`` map, or a blob that starts like an encoded PEM or Anthropic key).

Archives are expanded in memory under three limits (depth, members, expanded bytes per
top-level file) that a zip bomb hits long before memory does: each member is read with a bounded
``read(n)``, so a 4 GB member costs ``n`` bytes, never 4 GB. A member over a limit is reported as
skipped ("limit hit"), never silently dropped.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from claudesec.detect.rules import Detector, Severity

# Formats told apart by their first bytes (what `file` looks at); tar by its ustar magic.
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_TAR_MAGIC_AT = 257
# The first byte of every archive kind above but tar (whose magic sits at _TAR_MAGIC_AT).
_ARCHIVE_FIRST_BYTES = b"P\x1f\xfdB"
_COMPRESSED_SUFFIX = {"gzip": (".gz", ".tgz"), "bzip2": (".bz2", ".tbz2"), "xz": (".xz", ".txz")}


@dataclass(frozen=True)
class Limits:
    """Bounds on what one top-level file may expand to."""

    max_depth: int = 4  # archives inside archives inside ...
    max_members: int = 20_000
    max_bytes: int = 256 * 1024 * 1024  # expanded bytes, all members and levels together


def archive_kind(data: bytes) -> str | None:
    """``zip``, ``gzip``, ``bzip2``, ``xz`` or ``tar`` by content, else None."""
    # Every file of a scan comes through here: one byte and one slice settle most of them.
    if data[:1] not in _ARCHIVE_FIRST_BYTES and data[_TAR_MAGIC_AT : _TAR_MAGIC_AT + 5] != b"ustar":
        return None
    if data.startswith(_ZIP):
        return "zip"
    if data.startswith(_GZIP):
        return "gzip"
    if data.startswith(_XZ):
        return "xz"
    if data.startswith(_BZIP2) and data[3:4].isdigit() and data[4:10] == b"1AY&SY":
        return "bzip2"
    if data[_TAR_MAGIC_AT : _TAR_MAGIC_AT + 5] == b"ustar":
        return "tar"
    return None


def utf16_codec(head: bytes) -> str | None:
    """``utf-16`` (BOM), ``utf-16-le`` or ``utf-16-be`` (the NUL pattern of mostly Latin text)
    when the first bytes look like UTF-16 text, else None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    n = min(len(head), 4096)
    n -= n % 2
    if n < 16:
        return None
    half = n // 2
    major, minor = 0.9 * half, 0.05 * half
    # UTF-16 text of Latin script: nearly every other byte is NUL (more than `major`), the rest
    # nearly never (fewer than `minor`). Either byte order so holds more than `major` and fewer
    # than `half + minor` NULs in all: one count, with no copy of the head, settles every
    # binary file skipped (a third of a tree's files) but those with about half NULs. Exact:
    # a test compares it with the two counts alone on random heads and real binaries.
    if not major < head.count(0, 0, n) < half + minor:
        return None
    head = head[:n]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd > major and even < minor:
        return "utf-16-le"
    if even > major and odd < minor:
        return "utf-16-be"
    return None


def worth_decoding(head: bytes) -> bool:
    """Whether a file whose first bytes look binary is an archive or UTF-16 text after all."""
    return archive_kind(head) is not None or utf16_codec(head) is not None


def utf16_text(data: bytes) -> bytes | None:
    """The text as UTF-8 when ``data`` is UTF-16 text, else None."""
    codec = utf16_codec(data)
    if codec is None:
        return None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    return text.encode("utf-8", "surrogatepass")


class LimitHit(Exception):
    """An archive went over :class:`Limits`; the message says which limit."""


class Budget:
    """Members and bytes left for one top-level file, shared by every level below it."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.members = limits.max_members
        self.bytes = limits.max_bytes

    def take_member(self) -> None:
        self.members -= 1
        if self.members < 0:
            raise LimitHit(f"more than {self.limits.max_members} archive members")

    def read(self, stream: IO[bytes] | io.BufferedIOBase) -> bytes:
        """At most what the budget has left; one byte more means the member is too big."""
        data = stream.read(self.bytes + 1)
        if len(data) > self.bytes:
            raise LimitHit(f"expands to more than {self.limits.max_bytes // (1024 * 1024)} MB")
        self.bytes -= len(data)
        return data


Member = tuple[str, bytes]


class ArchiveError(Exception):
    """A damaged, truncated or unsupported archive (the reader's own error is the cause)."""


def expand(name: str, data: bytes, kind: str, budget: Budget) -> Iterator[Member]:
    """``(inner path, content)`` of each member, one level down. A compressed tar is expanded
    as the tar (``x.tar.gz!dir/file``); a single compressed file as ``x.gz!x``.

    Raises :class:`LimitHit` over a limit and :class:`ArchiveError` for a broken archive.
    The archive modules are imported here, not at start: the pre-commit hook rarely needs them.
    """
    errors = _archive_errors()
    try:
        yield from _expand(name, data, kind, budget)
    except LimitHit:
        raise
    except errors as exc:
        raise ArchiveError(str(exc) or type(exc).__name__) from exc


def _expand(name: str, data: bytes, kind: str, budget: Budget) -> Iterator[Member]:
    if kind == "zip":
        yield from _zip_members(data, budget)
    elif kind == "tar":
        yield from _tar_members(data, budget)
    else:
        budget.take_member()
        if kind == "gzip":
            inner = _gunzip(data, budget)
        else:
            with _decompressor(kind, data) as stream:
                inner = budget.read(stream)
        if archive_kind(inner) == "tar":
            yield from _tar_members(inner, budget)
            return
        base = name.rsplit("/", 1)[-1].rsplit("!", 1)[-1]
        for suffix in _COMPRESSED_SUFFIX[kind]:
            if base.endswith(suffix):
                base = base[: -len(suffix)] + (".tar" if suffix.startswith(".t") else "")
                break
        yield base or "data", inner


def _gunzip(data: bytes, budget: Budget) -> bytes:
    """One gzip member inflated by one zlib call, at most the budget plus one byte.

    ``gzip.GzipFile`` reads through a Python loop of small chunks and checks the CRC: on the
    1,400 ``.json.gz`` files of a Python environment that costs more than the inflating itself.
    A damaged stream still raises ``zlib.error``; a short one ``EOFError``.
    """
    parts: list[bytes] = []
    decompressobj = _inflater()
    while data:
        inflater = decompressobj(wbits=31)
        try:
            inner = inflater.decompress(data, budget.bytes + 1)
        except zlib.error:
            raise
        except Exception as exc:  # ISA-L's IsalError: the same damaged stream, its own class
            raise zlib.error(str(exc)) from exc
        if len(inner) > budget.bytes:
            raise LimitHit(f"expands to more than {budget.limits.max_bytes // (1024 * 1024)} MB")
        if not inflater.eof:
            raise EOFError("the gzip stream ends early")
        budget.bytes -= len(inner)
        parts.append(inner)
        # `cat a.gz b.gz` is a valid gzip file: each member follows the previous one.
        data = inflater.unused_data if inflater.unused_data.startswith(_GZIP) else b""
    return b"".join(parts)


def _inflater() -> Any:
    """``isal_zlib.decompressobj`` when ISA-L is installed (same API, ~2x faster), else zlib's."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib.decompressobj
    return isal_zlib.decompressobj


def _decompressor(kind: str, data: bytes) -> io.BufferedIOBase:
    """A stream that inflates ``data`` as it is read (so a bomb costs what is read)."""
    import bz2
    import gzip
    import lzma

    raw = io.BytesIO(data)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw)
    if kind == "bzip2":
        return bz2.BZ2File(raw)
    return lzma.LZMAFile(raw)


def _zip_members(data: bytes, budget: Budget) -> Iterator[Member]:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            budget.take_member()
            with archive.open(info) as stream:
                yield info.filename, budget.read(stream)


def _tar_members(data: bytes, budget: Budget) -> Iterator[Member]:
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for info in archive:
            if not info.isfile():
                continue  # links, devices and directories hold no content of their own
            budget.take_member()
            stream = archive.extractfile(info)
            if stream is not None:
                with stream:
                    yield info.name, budget.read(stream)


def _archive_errors() -> tuple[type[Exception], ...]:
    """Errors a damaged or hostile archive raises while being read: reported, never a crash."""
    import lzma
    import tarfile
    import zipfile

    return (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        tarfile.TarError,
        lzma.LZMAError,
        zlib.error,
        EOFError,
        OSError,
        ValueError,
        NotImplementedError,  # zip compression methods Python cannot read
        RuntimeError,  # encrypted zip members
    )


# --------------------------------------------------------------------------- notebooks


def notebook_cells(data: bytes) -> Iterator[tuple[str, bytes]]:
    """``(label, text)`` of each cell's source and each output of a Jupyter notebook.

    nbformat stores text as lists of lines inside JSON strings, so a multi-line secret (a PEM
    key printed by a cell) is split by quotes and commas in the raw file; joined here it reads
    as the cell showed it.
    """
    import json

    try:
        document = json.loads(data)
    except ValueError:
        return
    cells = document.get("cells") if isinstance(document, dict) else None
    if not isinstance(cells, list):
        return
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            continue
        source = _joined(cell.get("source"))
        if source:
            yield f"cell-{number}", source
        outputs = cell.get("outputs")
        if not isinstance(outputs, list):
            continue
        for index, output in enumerate(outputs, start=1):
            if not isinstance(output, dict):
                continue
            parts = [_joined(output.get("text")), _joined(output.get("traceback"))]
            payload = output.get("data")
            if isinstance(payload, dict):
                for mime, value in payload.items():
                    if mime.startswith("text/") or mime.endswith("json"):
                        parts.append(
                            _joined(value)
                            if not isinstance(value, dict)
                            else json.dumps(value).encode()
                        )
            text = b"\n".join(p for p in parts if p)
            if text:
                yield f"cell-{number}/output-{index}", text


def _joined(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return "".join(v if isinstance(v, str) else "" for v in value).encode(
            "utf-8", "surrogateescape"
        )
    return b""


# --------------------------------------------------------------------------- base64

_B64 = "A-Za-z0-9+/"
_FIX = "Decode it, then remove and rotate the credential inside as its own finding says."


def _decoder(id: str, keywords: tuple[str, ...], pattern: str, *, gate: str = "") -> Detector:
    return Detector(
        id=id,
        kind="base64 blob",
        keywords=keywords,
        pattern=pattern,
        severity=Severity.LOW,
        fix=_FIX,
        gate=gate,
        after=64 * 1024,
        verbose=False,
    )


# Places where credentials are kept base64-encoded, as the tools that write them write them.
# These are not secret rules: a hit is decoded and the catalogue runs on what it decodes to.
DECODERS: tuple[Detector, ...] = (
    # kubeconfig: client-key-data, and any other *-data: field holding an encoded blob.
    _decoder(
        "decode-base64-data-field",
        ("-data:",),
        rf"-data:[ \t]*[\"']?(?P<secret>[{_B64}]{{16,}}={{0,2}})",
    ),
    # docker config.json / podman auth.json: "auth": base64("user:password").
    _decoder(
        "decode-base64-docker-auth",
        ('"auth"',),
        rf'"auth"[ \t]*:[ \t]*"(?P<secret>[{_B64}]{{8,}}={{0,2}})"',
        gate=rf'"auth"[ \t]*:[ \t]*"[{_B64}]{{8}}',
    ),
    # A Kubernetes Secret's data: map, each value base64; the whole map is one match.
    _decoder(
        "decode-base64-k8s-data",
        ("data:",),
        rf"data:[ \t]*\r?\n(?P<secret>(?:[ \t]+[\w.-]+:[ \t]*[\"']?[{_B64}]{{4,}}={{0,2}}[\"']?"
        r"[ \t]*\r?\n?)+)",
        gate=rf"data:[ \t]*\r?\n[ \t]+[\w.-]+:[ \t]*[\"']?[{_B64}]{{4}}",
    ),
    # Anywhere: a blob that starts like an encoded PEM block or an encoded Anthropic key.
    _decoder(
        "decode-base64-pem",
        ("LS0tLS1CRUdJT",),
        rf"(?<![{_B64}])(?P<secret>LS0tLS1CRUdJT[{_B64}]{{20,}}={{0,2}})",
    ),
    _decoder(
        "decode-base64-anthropic",
        ("c2stYW50LW",),
        rf"(?<![{_B64}])(?P<secret>c2stYW50LW[{_B64}]{{20,}}={{0,2}})",
    ),
)
DECODER_IDS = frozenset(d.id for d in DECODERS)
_K8S_VALUE = re.compile(rb"[ \t]+[\w.-]+:[ \t]*[\"']?([A-Za-z0-9+/]{4,}={0,2})")


def base64_payloads(rule_id: str, blob: bytes) -> Iterator[tuple[int, bytes]]:
    """``(offset in blob, decoded bytes)`` of each base64 value a decoder hit holds."""
    if rule_id == "decode-base64-k8s-data":
        for match in _K8S_VALUE.finditer(blob):
            decoded = _b64(match.group(1))
            if decoded is not None:
                yield match.start(1), decoded
        return
    decoded = _b64(blob)
    if decoded is not None:
        yield 0, decoded


def encoded_values(secret: bytes) -> list[bytes]:
    """What a finding's secret holds base64-encoded: the whole secret decoded (a
    ``client-key-data`` or docker ``auth`` value), else each ``name: value`` line's value of
    eight bytes or more (a Secret manifest's ``data:`` map); empty if nothing decodes."""
    whole = _b64(secret.strip())
    if whole is not None:
        return [whole]
    values = []
    for line in secret.splitlines():
        _, sep, value = line.partition(b":")
        decoded = _b64(value.strip().strip(b"\"'")) if sep else None
        if decoded is not None and len(decoded) >= 8:
            values.append(decoded)
    return values


def _b64(blob: bytes) -> bytes | None:
    try:
        return base64.b64decode(blob + b"=" * (-len(blob) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None

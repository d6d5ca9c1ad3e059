"""Thin, fast wrappers around the ``git`` binary for the scan sources."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from claudesec.errors import GitError, UsageError


class GitMissing(GitError):
    """The git binary is not installed or cannot be run."""


class NotARepository(UsageError):
    """A git-only mode (``--staged``, ``--history``) was asked for outside a repository."""


def run_git(args: Sequence[str], cwd: str, *, check: bool = True) -> bytes:
    """Run ``git ARGS`` in ``cwd`` and return stdout; git missing or failing is a GitError."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise _git_missing() from exc
    except OSError as exc:
        raise GitMissing(f"cannot run git: {exc.strerror or exc}") from exc
    if check and proc.returncode != 0:
        raise _error(args, proc.stderr)
    return proc.stdout


def _start_git(
    args: Sequence[str], cwd: str, *, stdin: int | None = None, stderr: int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """Start ``git ARGS`` in ``cwd`` with its stdout piped; git missing is GitMissing."""
    try:
        return subprocess.Popen(
            ["git", *args], cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr
        )
    except FileNotFoundError as exc:
        raise _git_missing() from exc


def _git_missing() -> GitMissing:
    return GitMissing("git is not installed or not on PATH", hint="install git")


def _error(args: Sequence[str], stderr: bytes) -> GitError | NotARepository:
    message = stderr.decode("utf-8", "replace").strip().splitlines()
    first = message[0] if message else "no message"
    if "not a git repository" in first.lower():
        return NotARepository(
            "not inside a git repository", hint="run it in a repository, or scan a directory"
        )
    return GitError(f"git {args[0]} failed: {first}")


def repo_top(cwd: str) -> str | None:
    """The work tree's top directory, or None outside a repository (or without git)."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, check=False
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "surrogateescape").rstrip("\n") or None


def cat_blobs(cwd: str, names: Iterable[bytes]) -> Iterator[tuple[bytes, bytes | None]]:
    """Stream ``(name, content)`` for each object name through one ``git cat-file --batch``.

    ``content`` is None for a missing object. Names are written from a thread so a large
    request list cannot deadlock against git's output pipe.
    """
    proc = _start_git(["cat-file", "--batch"], cwd, stdin=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    requested: list[bytes] = list(names)
    stdin = proc.stdin

    def feed() -> None:
        try:
            for name in requested:
                stdin.write(name + b"\n")
            stdin.close()
        except (BrokenPipeError, OSError):
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    out = proc.stdout
    try:
        for name in requested:
            header = out.readline()
            if not header:
                break
            yield name, _read_object(out, header)
    finally:
        writer.join(timeout=5)
        out.close()
        err = proc.stderr.read() if proc.stderr else b""
        if proc.stderr:
            proc.stderr.close()
        code = proc.wait()
        if code not in (0, -13) and err:
            raise _error(["cat-file"], err)


def _read_object(out: IO[bytes], header: bytes) -> bytes | None:
    """The content behind one ``git cat-file --batch`` header; None for a missing object."""
    parts = header.split()
    if len(parts) == 2 and parts[1] == b"missing":
        return None
    if len(parts) < 3:
        raise GitError(f"unexpected git cat-file output: {header[:80]!r}")
    data = out.read(int(parts[2]))
    out.read(1)  # the newline after each object
    return data


class CatFile:
    """One long-lived ``git cat-file --batch`` that serves many small requests.

    A history scan shared between processes gives each its own; each request is a chunk of
    object names small enough (< 64 KiB of names) to be written whole before any content is
    read, so neither side can block the other.
    """

    MAX_NAMES_BYTES = 60 * 1024

    def __init__(self, cwd: str) -> None:
        self._proc = _start_git(
            ["cat-file", "--batch"], cwd, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in = self._proc.stdin
        self._out = self._proc.stdout

    def fetch(self, names: Sequence[bytes]) -> Iterator[tuple[bytes, bytes | None]]:
        """``(name, content)`` for each name, in order; content None for a missing object."""
        request = b"".join(name + b"\n" for name in names)
        if len(request) > self.MAX_NAMES_BYTES:
            raise ValueError("request too large for one round trip")
        self._in.write(request)
        self._in.flush()
        out = self._out
        for name in names:
            header = out.readline()
            if not header:
                raise GitError("git cat-file stopped early")
            yield name, _read_object(out, header)

    def close(self) -> None:
        self._in.close()
        self._out.close()
        self._proc.wait()

    def __enter__(self) -> CatFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_pack_order(cwd: str) -> subprocess.Popen[bytes]:
    """Start listing every object in the order git stores it (packs, then loose objects).

    It runs beside ``git log``; :func:`read_pack_order` collects it. Asking ``cat-file`` for
    blobs in the reverse of this order lets its delta-base cache do most of the work: measured
    on a 1,500-commit repository, 1.23 s of git CPU instead of 1.45 s in ``git log`` order and
    1.89 s in storage order.
    """
    args = [
        "cat-file",
        "--batch-all-objects",
        "--unordered",
        "--batch-check=%(objectname) %(objecttype) %(objectsize)",
    ]
    return _start_git(args, cwd)


def read_pack_order(proc: subprocess.Popen[bytes]) -> dict[bytes, tuple[int, int]]:
    """Each blob's ``(position, size)`` from a listing :func:`start_pack_order` started."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise _error(["cat-file"], err)
    order: dict[bytes, tuple[int, int]] = {}
    for position, line in enumerate(out.splitlines()):
        name, kind, size = line.split(b" ")
        if kind == b"blob":
            order[name] = (position, int(size))
    return order

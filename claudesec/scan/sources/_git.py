"""Thin, fast wrappers around the ``git`` binary for the scan sources."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable, Iterator, Sequence

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
        raise GitMissing("git is not installed or not on PATH", hint="install git") from exc
    except OSError as exc:
        raise GitMissing(f"cannot run git: {exc.strerror or exc}") from exc
    if check and proc.returncode != 0:
        raise _error(args, proc.stderr)
    return proc.stdout


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
    try:
        proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise GitMissing("git is not installed or not on PATH", hint="install git") from exc
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
            parts = header.split()
            if len(parts) == 2 and parts[1] == b"missing":
                yield name, None
                continue
            if len(parts) < 3:
                raise GitError(f"unexpected git cat-file output: {header[:80]!r}")
            size = int(parts[2])
            data = out.read(size)
            out.read(1)  # the newline after each object
            yield name, data
    finally:
        writer.join(timeout=5)
        out.close()
        err = proc.stderr.read() if proc.stderr else b""
        if proc.stderr:
            proc.stderr.close()
        code = proc.wait()
        if code not in (0, -13) and err:
            raise _error(["cat-file"], err)

"""Which files a directory scan reads, and listing them while the scan is still starting.

A tree's file list comes from ``git ls-files`` inside a work tree (so ``.gitignore`` is
respected) or from a walk that never follows symlinks. On a 51,000-file tree the walk takes
~85 ms and starting the scan (imports, config, the compiled pattern set) ~80 ms: one after the
other they were a fifth of the whole scan's wall time. :func:`prefetch` forks a process that
lists the tree at once, before any of that, and hands the list over in chunks as it goes
(:class:`Listing`): a parallel scan starts on the first chunks while the rest are being listed
(:func:`take_stream`), a serial one takes the whole list (:func:`take`). The child runs the
same functions as an in-process listing; if it fails for any reason the list is made again
in-process, where the error is raised as usual.

Only standard-library imports here: the command line calls :func:`prefetch` before it has
imported the engine.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence

from claudesec.scan.sources._git import repo_top, run_git

# Paths travel as UTF-8 (surrogate escapes keep names that are not), split by the one
# character no path can hold.
_SEP = "\0"
_ENCODING, _ERRORS = "utf-8", "surrogateescape"
# A note in the pipe: where a chunk starts in the file, and its length. 16 bytes: a pipe's
# pages hold whole notes, and a read of one note is atomic.
_NOTE = struct.Struct("<QQ")
# The file's head: paths listed, notes written (what a progress line reads).
_HEADER = struct.Struct("<QQ")
CHUNK_FILES = 64


def list_files(root: str, *, use_git: bool) -> list[str]:
    """Relative posix paths of the files to scan under the directory ``root``."""
    return list(files(root, use_git=use_git))


def files(root: str, *, use_git: bool) -> Iterator[str]:
    """:func:`list_files` as it is made: git's whole list at once, or a walk's as it goes."""
    listed = git_files(root) if use_git else None
    return walk(root) if listed is None else iter(listed)


def git_files(root: str) -> list[str] | None:
    """``git ls-files -co --exclude-standard`` under ``root``; None outside a work tree."""
    if repo_top(root) is None:
        return None
    out = run_git(["ls-files", "-co", "--exclude-standard", "-z"], root)
    return [p for p in out.decode(_ENCODING, _ERRORS).split(_SEP) if p]


def walk(root: str) -> Iterator[str]:
    """Relative posix paths of the files below ``root``; symlinks are listed, never entered."""
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = os.scandir(os.path.join(root, rel_dir) if rel_dir else root)
        except OSError:
            continue
        with entries:
            for entry in entries:
                rel = rel_dir + entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != ".git":
                            stack.append(rel + "/")
                        continue
                except OSError:
                    continue
                yield rel


class Listing:
    """A listing made by a forked child, read as it grows.

    The child appends the paths, ``\\0``-separated, :data:`CHUNK_FILES` at a time, to an
    anonymous file, and after each chunk writes a 16-byte note (offset, length) into a pipe.
    Any process holding the pipe (forked scan workers too) claims the next chunk by reading one
    note: reads that small from a pipe are atomic, so every chunk is claimed once. The pipe
    ends when the child exits; :meth:`completed` says whether it listed everything. The file's
    first 16 bytes count the paths listed and the notes written so far (:meth:`tally`).
    """

    def __init__(self, pid: int, data_fd: int, notes_fd: int) -> None:
        self.pid = pid
        self._data_fd = data_fd
        self._notes_fd = notes_fd
        self._status: int | None = None

    def claim(self) -> list[str] | None:
        """The next chunk of paths not claimed by any process, or None at the end."""
        raw = os.read(self._notes_fd, _NOTE.size)
        if len(raw) != _NOTE.size:
            return None
        offset, length = _NOTE.unpack(raw)
        return os.pread(self._data_fd, length, offset).decode(_ENCODING, _ERRORS).split(_SEP)

    def tally(self) -> tuple[int, int]:
        """About how many paths have been claimed, and how many listed so far: what a
        progress line shows while the tree is still being listed and scanned at once."""
        from claudesec.scan.parallel import unread

        head = os.pread(self._data_fd, _HEADER.size, 0)
        listed, notes = _HEADER.unpack(head) if len(head) == _HEADER.size else (0, 0)
        left = unread(self._notes_fd) // _NOTE.size
        return min(max(notes - left, 0) * CHUNK_FILES, listed), listed

    def completed(self) -> bool:
        """Whether the child listed the whole tree (waits for it to end)."""
        if self._status is None:
            _, self._status = os.waitpid(self.pid, 0)
        return os.WIFEXITED(self._status) and os.WEXITSTATUS(self._status) == 0

    def result(self) -> list[str] | None:
        """Every path, or None when the child did not finish cleanly."""
        with self:
            paths: list[str] = []
            while (chunk := self.claim()) is not None:
                paths.extend(chunk)
            return paths if self.completed() else None

    def close(self) -> None:
        """Stop the child if it still runs, reap it, and close the pipe and file."""
        if self._status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                _, self._status = os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                self._status = -1
        for fd in (self._notes_fd, self._data_fd):
            if fd >= 0:
                os.close(fd)
        self._notes_fd = self._data_fd = -1

    def __enter__(self) -> Listing:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_pending: dict[tuple[str, bool], Listing] = {}


def prefetch(roots: Iterable[str], *, use_git: bool) -> None:
    """Start listing each directory of ``roots`` in a forked process (Linux only; nothing
    happens elsewhere, for a file or a symlink, or when threads are running, which a fork
    must never copy). :func:`take` or :func:`take_stream` collects it; :func:`discard` drops
    what was not taken."""
    if not (hasattr(os, "fork") and hasattr(os, "memfd_create")) or os.uname().sysname != "Linux":
        return
    if threading.active_count() > 1:
        return
    import fcntl  # POSIX only, as the forking it serves

    for root in roots:
        key = (root, use_git)
        if key in _pending or os.path.islink(root) or not os.path.isdir(root):
            continue
        # An early listing only saves time: when the system refuses any part of it (no file
        # descriptors left, a sandbox without memfd, no process to spare) the scan lists the
        # tree itself, as it would without one.
        opened: list[int] = []
        try:
            opened.append(os.memfd_create("claudesec-listing", os.MFD_CLOEXEC))
            opened.extend(os.pipe())
            data_fd, notes_read, notes_write = opened
            with contextlib.suppress(OSError):
                # Room for 65,536 notes (4 million paths) before the child waits for a reader.
                fcntl.fcntl(notes_write, fcntl.F_SETPIPE_SZ, 1 << 20)
            pid = os.fork()
        except OSError:
            for fd in opened:
                os.close(fd)
            return
        if pid == 0:  # pragma: no cover - runs in the child; what it writes is what is tested
            os.close(notes_read)
            _child(root, use_git, data_fd, notes_write)
        # Only the child may hold the writing end: the pipe ends when the child does.
        os.close(notes_write)
        _pending[key] = Listing(pid, data_fd, notes_read)


def prefetch_for_scan(
    targets: Sequence[str], *, staged: bool, history: bool, no_git: bool, jobs: int | None
) -> None:
    """:func:`prefetch` for the targets of a ``claudesec scan`` call: not for ``--staged`` or
    ``--history`` (they read git's objects), nor with ``-j 1`` (one process, listing included)."""
    if not (staged or history or jobs == 1):
        prefetch(targets or ["."], use_git=not no_git)


def _child(root: str, use_git: bool, data_fd: int, notes_fd: int) -> None:  # pragma: no cover
    code = 1
    try:
        source = files(root, use_git=use_git)
        offset = _HEADER.size
        listed = notes = 0
        while chunk := list(itertools.islice(source, CHUNK_FILES)):
            data = _SEP.join(chunk).encode(_ENCODING, _ERRORS)
            view = memoryview(data)
            while view:
                view = view[os.pwrite(data_fd, view, offset + len(data) - len(view)) :]
            listed, notes = listed + len(chunk), notes + 1
            os.pwrite(data_fd, _HEADER.pack(listed, notes), 0)
            os.write(notes_fd, _NOTE.pack(offset, len(data)))
            offset += len(data)
        code = 0
    finally:
        # Whatever went wrong, the parent lists again and raises it there. No atexit
        # handlers, no traceback, no flushing of the parent's stdio buffers a second time.
        os._exit(code)


def take(root: str, *, use_git: bool) -> list[str] | None:
    """The whole list :func:`prefetch` made for ``root``, or None when there is none to take
    (or it failed: list again, in-process)."""
    pending = _pending.pop((root, use_git), None)
    return pending.result() if pending is not None else None


def take_stream(root: str, *, use_git: bool) -> Listing | None:
    """The listing :func:`prefetch` started for ``root``, to be read while it grows."""
    return _pending.pop((root, use_git), None)


def discard() -> None:
    """Stop and reap every listing not taken (a scan that failed before it needed one)."""
    while _pending:
        _, pending = _pending.popitem()
        pending.close()

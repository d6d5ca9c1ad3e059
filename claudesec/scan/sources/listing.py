"""Which files a directory scan reads, and listing them while the scan is still starting.

A tree's file list comes from ``git ls-files`` inside a work tree (so ``.gitignore`` is
respected) or from a walk that never follows symlinks. On a 51,000-file tree the walk takes
~85 ms and building the scan's engine (imports, config, the compiled pattern set) ~80 ms, one
after the other on one core. :func:`prefetch` forks a process to list the tree at once, before
any of that; :func:`take` collects its list when the scan needs it, exactly what
:func:`list_files` would have returned then (the child runs the same function; if it fails
for any reason the list is made again in-process, where the error is raised as usual).

Only standard-library imports here: the command line calls :func:`prefetch` before it has
imported the engine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator

from claudesec.scan.sources._git import repo_top, run_git

_SEPARATOR = "\0"  # the one character no path can hold


def list_files(root: str, *, use_git: bool) -> list[str]:
    """Relative posix paths of the files to scan under the directory ``root``."""
    listed = git_files(root) if use_git else None
    return list(walk(root)) if listed is None else listed


def git_files(root: str) -> list[str] | None:
    """``git ls-files -co --exclude-standard`` under ``root``; None outside a work tree."""
    if repo_top(root) is None:
        return None
    out = run_git(["ls-files", "-co", "--exclude-standard", "-z"], root)
    return [p for p in out.decode("utf-8", "surrogateescape").split(_SEPARATOR) if p]


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


class _Pending:
    """A listing running in a forked child that writes its result into an anonymous file."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd

    def result(self) -> list[str] | None:
        """The child's list, or None when it did not finish cleanly."""
        try:
            _, status = os.waitpid(self.pid, 0)
            if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
                return None
            size = os.fstat(self.fd).st_size
            data = os.pread(self.fd, size, 0) if size else b""
            if len(data) != size:
                return None
        finally:
            os.close(self.fd)
        text = data.decode("utf-8", "surrogateescape")
        return text.split(_SEPARATOR) if text else []

    def discard(self) -> None:
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        finally:
            os.close(self.fd)


_pending: dict[tuple[str, bool], _Pending] = {}


def prefetch(roots: Iterable[str], *, use_git: bool) -> None:
    """Start listing each directory of ``roots`` in a forked process (Linux only; nothing
    happens elsewhere, for a file or a symlink, or when threads are running, which a fork
    must never copy). :func:`take` collects the result; :func:`discard` drops what was not
    taken."""
    if not (hasattr(os, "fork") and hasattr(os, "memfd_create")) or os.uname().sysname != "Linux":
        return
    if threading.active_count() > 1:
        return
    for root in roots:
        key = (root, use_git)
        if key in _pending or os.path.islink(root) or not os.path.isdir(root):
            continue
        fd = os.memfd_create("claudesec-listing", os.MFD_CLOEXEC)
        try:
            pid = os.fork()
        except OSError:
            os.close(fd)
            return
        if pid == 0:  # pragma: no cover - runs in the child; what it writes is what is tested
            _child(root, use_git, fd)
        _pending[key] = _Pending(pid, fd)


def _child(root: str, use_git: bool, fd: int) -> None:  # pragma: no cover - forked child
    code = 1
    try:
        data = _SEPARATOR.join(list_files(root, use_git=use_git)).encode("utf-8", "surrogateescape")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        code = 0
    finally:
        # Whatever went wrong, the parent lists again and raises it there. No atexit
        # handlers, no traceback, no flushing of the parent's stdio buffers a second time.
        os._exit(code)


def take(root: str, *, use_git: bool) -> list[str] | None:
    """The list :func:`prefetch` made for ``root``, or None when there is none to take."""
    pending = _pending.pop((root, use_git), None)
    return pending.result() if pending is not None else None


def discard() -> None:
    """Stop and reap every listing not taken (a scan that failed before it needed one)."""
    while _pending:
        _, pending = _pending.popitem()
        pending.discard()

"""Every error claudesec raises, each tied to one documented exit code.

Domain code raises these; the CLI turns them into one line on stderr and the exit code.
Messages must never contain a secret: pass secrets through :func:`claudesec.redact.redact`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """The process exit codes, documented in the README."""

    OK = 0
    FOUND = 1  # the check found something: a leak, a failed drill, a tampered log, an overdue key
    USAGE = 2  # usage or configuration error
    EXTERNAL = 3  # an external service failed: AWS, Anthropic, git, the network, the disk
    PARTIAL = 4  # some items succeeded and some failed
    INTERNAL = 70  # EX_SOFTWARE: a bug in claudesec, not in the user's input
    NOT_EXECUTABLE = 126  # `keys exec`: the command exists but cannot run (as shells say)
    COMMAND_NOT_FOUND = 127  # `keys exec`: no such command (as shells say)
    INTERRUPTED = 130  # Ctrl-C or SIGTERM, as shells report 128 + SIGINT


INTERRUPTED_LINE = "claudesec: error: interrupted"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``"did you mean 'scan'?"`` for the choice closest to a mistyped ``word``, if any is close."""
    import difflib

    # 0.7: 'scna' -> 'scan' and '--formt' -> '--format', but not '--bogus' -> '--jobs'.
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f"did you mean {close[0]!r}?" if close else None


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) as one space.

    Messages quote what servers said, and a server can say it over many lines (an XML error
    body, a proxy's HTML page): an error must stay one line on stderr and in a log.
    """
    return " ".join(text.split())


class ClaudesecError(Exception):
    """Base class: a message for the user, an optional hint, and an exit code.

    Message and hint are made one line here, once for every error, whatever they quote.
    """

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = one_line(message)
        hint = one_line(hint) if hint is not None else None
        super().__init__(message)
        self.message = message
        self.hint = hint

    def user_message(self) -> str:
        """The one line shown on stderr."""
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message

    def __str__(self) -> str:
        return self.user_message()


class UsageError(ClaudesecError):
    """The command was called wrongly (bad option, missing repository, bad input)."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The configuration could not be read or is invalid; names the file and line."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}", hint=hint)
        self.path = path
        self.line = line


class ExternalServiceError(ClaudesecError):
    """AWS, Anthropic, git, the network or the file system failed."""

    exit_code = ExitCode.EXTERNAL


class GitError(ExternalServiceError):
    """git is missing or a git command failed."""


class StoreError(ExternalServiceError):
    """A local store (audit log, key store) cannot be opened, read or written."""


class CheckFailed(ClaudesecError):
    """A check found something the user must act on (exit 1)."""

    exit_code = ExitCode.FOUND


class PartialFailure(ClaudesecError):
    """Some items succeeded and some failed (exit 4)."""

    exit_code = ExitCode.PARTIAL


class CommandNotFound(ClaudesecError):
    """``keys exec``: the command to run does not exist (exit 127, as shells report it)."""

    exit_code = ExitCode.COMMAND_NOT_FOUND


class CommandNotExecutable(ClaudesecError):
    """``keys exec``: the command exists but is not executable (exit 126, as shells)."""

    exit_code = ExitCode.NOT_EXECUTABLE

"""Every error claudesec raises, each tied to one documented exit code.

Domain code raises these; the CLI turns them into one line on stderr and the exit code.
Messages must never contain a secret: pass secrets through :func:`claudesec.redact.redact`.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The process exit codes, documented in the README."""

    OK = 0
    FOUND = 1  # the check found something: a leak, a failed drill, a tampered log, an overdue key
    USAGE = 2  # usage or configuration error
    EXTERNAL = 3  # an external service failed: AWS, Anthropic, git, the network, the disk
    PARTIAL = 4  # some items succeeded and some failed


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

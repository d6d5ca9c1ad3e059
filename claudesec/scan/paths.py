"""Path globs as users write them in ``scan.allow_paths``, excludes and custom rules' path
allowlists: ``*.md``, ``tests/**``, ``vendor``, matched against repo-relative posix paths."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase


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

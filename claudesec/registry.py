"""One way to register the implementations of a seam: a name mapped to where it lives.

Each seam (report formats, key stores, export sinks) keeps a :class:`Registry` beside its
``interface.py``: ``{"sarif": "claudesec.scan.reports.sarif:SarifFormat", ...}``. The module
behind a name is imported only when that name is asked for, so ``claudesec --help`` and the
pre-commit scan never import boto3 or a Kafka client they will not use; adding an
implementation is one module and one line in its registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Generic, TypeVar

from claudesec.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named implementations of one seam, each loaded on first use."""

    def __init__(self, seam: str, entries: Mapping[str, str]) -> None:
        self.seam = seam
        self._entries = dict(entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def load(self, name: str) -> T:
        """The object registered as ``name`` (a class or a factory); :class:`UsageError` (exit 2)
        naming the choices when there is none."""
        target = self._entries.get(name)
        if target is None:
            raise UsageError(
                f"unknown {self.seam} {name!r}", hint=f"choose one of {', '.join(self.names)}"
            )
        module_name, _, attribute = target.partition(":")
        found: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
        return found  # type: ignore[return-value]

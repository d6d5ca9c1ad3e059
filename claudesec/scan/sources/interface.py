"""The scan-source interface: where the bytes come from (a tree, the index, history, stdin)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from claudesec.scan.model import Finding
from claudesec.scan.scanner import BlobScanner


class Source(ABC):
    """A place to scan. ``scan`` feeds its content through the scanner and returns findings."""

    name: str = "source"
    root: str = "."

    @abstractmethod
    def scan(self, scanner: BlobScanner, *, jobs: int = 1) -> list[Finding]:
        """Scan everything this source holds; counters go to ``scanner.stats``."""

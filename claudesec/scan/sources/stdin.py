"""Standard input (``claudesec scan -``): streamed, so a huge pipe needs bounded memory."""

from __future__ import annotations

import sys
from typing import BinaryIO

from claudesec.scan.model import Finding
from claudesec.scan.scanner import BLOCK_SIZE, BlobScanner
from claudesec.scan.sources.interface import Source


class StdinSource(Source):
    name = "stdin"
    root = "-"

    def __init__(self, stream: BinaryIO | None = None, label: str = "<stdin>") -> None:
        self.stream = stream
        self.label = label

    def scan(self, scanner: BlobScanner, *, jobs: int = 1) -> list[Finding]:
        scanner.stats.files += 1
        if self.stream is not None:
            stream = self.stream
        else:
            binary = getattr(sys.stdin, "buffer", None)
            if binary is None:  # a text stream stand-in (embedding, tests): encode what it gives
                text = sys.stdin
                blocks = iter(lambda: text.read(BLOCK_SIZE).encode("utf-8", "surrogateescape"), b"")
                return scanner.scan_stream(self.label, blocks)
            stream = binary
        return scanner.scan_stream(self.label, iter(lambda: stream.read(BLOCK_SIZE), b""))

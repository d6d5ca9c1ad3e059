"""The report-format interface: one module per format beside this one."""

from __future__ import annotations

from abc import ABC, abstractmethod

from claudesec.scan.model import ScanResult


class ReportFormat(ABC):
    """Turns a :class:`ScanResult` into text. Implementations never see a full secret
    except through :attr:`Finding.hint`."""

    name: str

    @abstractmethod
    def render(self, result: ScanResult) -> str:
        """The whole report, ending with a newline."""

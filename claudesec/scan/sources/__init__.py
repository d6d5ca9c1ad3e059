"""Scan sources: one module each, all behind :class:`claudesec.scan.sources.interface.Source`."""

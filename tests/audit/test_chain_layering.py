"""The store writes the chain and verify checks it: both stand on ``audit/chain.py`` and never
on each other, not even through a lazy import inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import claudesec.audit

AUDIT = Path(claudesec.audit.__file__).parent


def _imports(module: str) -> set[str]:
    """Every module ``claudesec/audit/<module>.py`` imports, at any depth of its code."""
    tree = ast.parse((AUDIT / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize(
    ("module", "other"), [("store", "verify"), ("verify", "store"), ("chain", "store")]
)
def test_no_import_between_store_and_verify(module: str, other: str) -> None:
    assert f"claudesec.audit.{other}" not in _imports(module)
    if module == "chain":
        assert "claudesec.audit.verify" not in _imports(module)


def test_both_build_on_the_chain_module() -> None:
    assert "claudesec.audit.chain" in _imports("store")
    assert "claudesec.audit.chain" in _imports("verify")

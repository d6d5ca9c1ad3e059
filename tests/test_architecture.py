"""The package's shape, checked: no import cycles (lazy and type-only imports included), domain
packages free of the CLI toolkit, and a docstring on every module saying what it is for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "claudesec"
# Domain packages return data; only claudesec/cli (and the console it renders with) may
# import typer or rich.
DOMAIN = ("guard", "audit", "detect", "scan", "keys", "drill", "stores", "proxy", "emulator")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The claudesec module that ``import name`` loads last (a package or a module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Every claudesec module ``module`` imports, at top level, in functions, or for types."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # ``from pkg import submodule`` imports the submodule; ``from mod import name``, mod.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            target = resolve(name) if name.startswith("claudesec") else None
            if target and target != module:
                found.add(target)
    return found


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_lazy_imports_included() -> None:
    graph = {module: imports_of(module) for module in MODULES}
    assert find_cycles(graph) == []


@pytest.mark.parametrize("package", DOMAIN)
def test_domain_packages_do_not_import_typer_or_rich(package: str) -> None:
    offenders = [
        module
        for module in MODULES
        if module.startswith(f"claudesec.{package}")
        for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8")))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
        if name.split(".")[0] in ("typer", "rich", "click")
    ]
    assert offenders == []


def test_guard_and_audit_keep_to_their_own_side() -> None:
    """The evidence side never reaches into the zero-trust path (the reverse is the design)."""
    audit_to_guard = sorted(
        (module, target)
        for module in MODULES
        if module.startswith("claudesec.audit")
        for target in imports_of(module)
        if target.startswith("claudesec.guard")
    )
    assert audit_to_guard == []


def test_scan_and_dlp_share_detect_without_reaching_into_each_other() -> None:
    crossings = sorted(
        (module, target)
        for module in MODULES
        for target in imports_of(module)
        if (module.startswith("claudesec.scan") and target.startswith("claudesec.guard"))
        or (module.startswith("claudesec.guard") and target.startswith("claudesec.scan"))
        or (module.startswith("claudesec.detect") and not target.startswith("claudesec.detect"))
    )
    assert crossings == []


def test_every_module_says_what_it_is_for() -> None:
    missing = [
        module
        for module, path in MODULES.items()
        if len(ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "") < 40
    ]
    assert missing == []

"""docs/federation.md carries the lint catalogue's table as generated, and the walk-through's
config is a config claudesec accepts."""

from __future__ import annotations

import re
from pathlib import Path

from claudesec.config import load_config
from claudesec.federation.lint_catalogue import CATALOGUE, catalogue_markdown
from claudesec.federation.spec import load_spec
from tests.fixtures.cli import REPO_ROOT

DOC = REPO_ROOT / "docs" / "federation.md"


def test_the_lint_table_is_generated_from_the_catalogue() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert (
        "<!-- federation-lint -->\n" + catalogue_markdown() + "<!-- /federation-lint -->" in text
    ), "docs/federation.md lint table is stale: run scripts/update-federation-docs"
    for entry in CATALOGUE:
        assert f"| {entry.id} |" in text


def test_every_toml_example_of_the_walk_through_is_valid(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        path = tmp_path / "claudesec.toml"
        path.write_text(block)
        loaded = load_config(path, collect=True)
        assert loaded.problems == ()
        spec, problems = load_spec(loaded)
        assert problems == (), (block, problems)
        assert spec.rules

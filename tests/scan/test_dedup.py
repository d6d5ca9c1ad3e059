"""``--dedup``: one finding per distinct secret, with every other place it was found
(issue 16 item 3). The default stays one finding per place: each copy has to be removed."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.cli import RunCli
from tests.fixtures.keys import KeyFactory
from tests.scan.conftest import report


def _vendored_copies(root: Path) -> None:
    """One key copied into three files (a vendored SDK's fixture, twice), one other key."""
    factory = KeyFactory(71)
    shared = factory.anthropic_api().value
    other = factory.anthropic_api().value
    for rel in ("a/keys.py", "b/keys.py", "c/nested/keys.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f'KEY = "{shared}"\n')
    (root / "b/keys.py").write_text(f'KEY = "{shared}"\n\nOTHER = "{other}"\nAGAIN = "{shared}"\n')


def test_default_reports_every_place_a_secret_is(tmp_path: Path, run_cli: RunCli) -> None:
    _vendored_copies(tmp_path)
    result = run_cli("scan", str(tmp_path), "--no-git", "-f", "json")
    assert len(report(result)["findings"]) == 5
    assert all(f["also_at"] == [] for f in report(result)["findings"])


def test_dedup_reports_each_distinct_secret_once_with_its_other_places(
    tmp_path: Path, run_cli: RunCli
) -> None:
    _vendored_copies(tmp_path)
    result = run_cli("scan", str(tmp_path), "--no-git", "--dedup", "-f", "json")
    assert result.exit_code == 1
    findings = report(result)["findings"]
    assert [(f["path"], f["line"]) for f in findings] == [("a/keys.py", 1), ("b/keys.py", 3)]
    assert findings[0]["also_at"] == ["b/keys.py:1", "b/keys.py:4", "c/nested/keys.py:1"]
    assert findings[1]["also_at"] == []
    assert report(result)["summary"]["findings"] == 2
    assert report(result)["summary"]["duplicates"] == 3

    text = run_cli("scan", str(tmp_path), "--no-git", "--dedup")
    assert "also in 3 more places: b/keys.py:1, b/keys.py:4, c/nested/keys.py:1" in text.stdout
    assert "2 findings in 3 files" in text.stderr
    assert "3 more copies of these secrets" in text.stderr


def test_dedup_does_not_apply_to_history(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("scan", "--history", "--dedup", str(tmp_path))
    assert result.exit_code == 2
    assert "--dedup" in result.stderr


def test_dedup_sarif_lists_the_other_places_as_related_locations(
    tmp_path: Path, run_cli: RunCli
) -> None:
    import json

    import jsonschema

    from tests.scan.test_reports import SCHEMA

    project = tmp_path / "project"
    project.mkdir()
    _vendored_copies(project)
    result = run_cli("scan", str(project), "--no-git", "--dedup", "-f", "sarif")
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()), cls=jsonschema.Draft4Validator)
    first = document["runs"][0]["results"][0]
    related = [
        (
            r["physicalLocation"]["artifactLocation"]["uri"],
            r["physicalLocation"]["region"]["startLine"],
        )
        for r in first["relatedLocations"]
    ]
    assert related == [("b/keys.py", 1), ("b/keys.py", 4), ("c/nested/keys.py", 1)]

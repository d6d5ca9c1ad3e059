"""A scan loads ``[scan]`` alone (claudesec.config_scan.load_scan_config): the same section, the
same errors word for word, as the whole load gives; problems in other sections are left to the
commands that read them; and the hook never imports the whole schema for it."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from claudesec.config import Config, load_config
from claudesec.config_scan import SECTION_NAMES, ScanConfig, load_scan_config
from claudesec.errors import ConfigError
from tests.fixtures.keys import KeyFactory

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_section_names_are_the_whole_configurations() -> None:
    assert tuple(f.name for f in dataclasses.fields(Config)) == SECTION_NAMES


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


# One good and one wrong value per [scan] key, made from the schema so a new key is covered.
def _good(spec: dataclasses.Field[Any]) -> Any:
    default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()  # type: ignore[misc]
    if isinstance(default, bool):
        return not default
    if isinstance(default, (int, float)):
        return default + 1
    if spec.name == "examples":
        return "report"
    if spec.name == "on_live_key":
        return "revoke"
    if spec.name == "rules":
        return None  # a table array: checked by its own cases below
    if isinstance(default, tuple):
        return ["a/*", "b/**"]
    return "some/file"


SCAN_KEYS = [f for f in dataclasses.fields(ScanConfig)]
GOOD = {f.name: _good(f) for f in SCAN_KEYS if _good(f) is not None}
WRONG = {f.name: ("twelve" if not isinstance(_good(f), str) else 12) for f in SCAN_KEYS}

VALID_FILES = {
    "every key set": "[scan]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in GOOD.items()),
    "no scan table": '[proxy]\nlisten = "127.0.0.1:9999"\n',
    "a custom rule": '[[scan.rules]]\nid = "acme-token"\nregex = "acme_[a-z0-9]{32}"\n'
    'keywords = ["acme_"]\n',
    "dotted keys": 'scan.exclude_paths = ["vendor/**"]\nscan.jobs = 3\n',
}


def _both(path: Path, environ: dict[str, str]) -> tuple[Any, Any]:
    """What each loader makes of the file: the section, or the error's text."""
    results = []
    for load in (
        lambda: load_config(path, environ=environ).config.scan,
        lambda: load_scan_config(path, environ=environ).scan,
    ):
        try:
            results.append(load())
        except ConfigError as exc:
            results.append(("error", str(exc), exc.exit_code))
    return results[0], results[1]


@pytest.mark.parametrize("name", sorted(VALID_FILES))
@pytest.mark.parametrize("filename", ["claudesec.toml", "pyproject.toml"])
def test_a_valid_file_gives_the_same_scan_section(tmp_path: Path, name: str, filename: str) -> None:
    text = VALID_FILES[name]
    if filename == "pyproject.toml":
        text = text.replace("[scan", "[tool.claudesec.scan").replace(
            "[proxy]", "[tool.claudesec.proxy]"
        )
        if text.startswith("scan."):
            text = "[tool.claudesec]\n" + text
        text = "[project]\nname = 'x'\n\n" + text
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    whole, alone = _both(path, {})
    assert whole == alone
    assert (isinstance(alone, ScanConfig) and alone != ScanConfig()) or name == "no scan table"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CLAUDESEC_SCAN_JOBS", "3"), ("CLAUDESEC_SCAN_EXCLUDE_PATHS", '["*.env"]'),
     ("CLAUDESEC_SCAN_EXAMPLES", "report"), ("CLAUDESEC_SCAN_JOBS", "three"),
     ("CLAUDESEC_SCAN_NO_SUCH_KEY", "1")],
)  # fmt: skip
def test_environment_overrides_give_the_same_section_and_errors(
    tmp_path: Path, variable: str, value: str
) -> None:
    path = tmp_path / "claudesec.toml"
    path.write_text("[scan]\njobs = 2\n", encoding="utf-8")
    whole, alone = _both(path, {variable: value})
    assert whole == alone


BAD_FILES = {
    **{f"wrong type for {k}": f"[scan]\n{k} = {_toml(v)}\n" for k, v in WRONG.items()},
    "negative number": "[scan]\njobs = -1\n",
    "zero where positive": "[scan]\nverify_timeout_s = 0\n",
    "unknown scan key": "[scan]\nexclude_path = []\n",
    "unknown top-level table": "[scann]\njobs = 1\n",
    "scan is not a table": "scan = 3\n",
    "invalid TOML": "[scan\njobs = 1\n",
    "not a choice": '[scan]\non_live_key = "delete"\n',
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_scan_section_is_the_same_error_naming_the_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / "claudesec.toml"
    path.write_text("# team settings\n\n" + BAD_FILES[name], encoding="utf-8")
    whole, alone = _both(path, {})
    assert whole == alone
    assert alone[0] == "error" and str(path) in alone[1], alone


def test_a_missing_named_file_is_the_same_error(tmp_path: Path) -> None:
    whole, alone = _both(tmp_path / "nope.toml", {})
    assert whole == alone and whole[0] == "error"
    with pytest.raises(ConfigError) as by_env:
        load_scan_config(environ={"CLAUDESEC_CONFIG": str(tmp_path / "nope.toml")})
    assert "CLAUDESEC_CONFIG" in str(by_env.value)


HOOK = """
import json, sys
from claudesec.scan.__main__ import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "whole schema imported": "claudesec.config" in sys.modules}))
"""


def _hook(tree: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDESEC_")}
    return subprocess.run(
        [sys.executable, "-c", HOOK, *argv],
        capture_output=True,
        text=True,
        cwd=tree,
        env={**environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )


def test_a_problem_in_another_section_is_for_the_command_that_reads_it(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.env").write_text("TOKEN=" + KeyFactory(86).npm().value + "\n")
    (tree / "claudesec.toml").write_text(
        '[scan]\nexclude_paths = ["*.env"]\n\n[proxy]\nlisten_port = 8788\n', encoding="utf-8"
    )
    done = _hook(tree, ".", "--no-git")
    # The scan applied [scan] (the key is excluded) and did not stop at the [proxy] typo.
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "code": 0,
        "whole schema imported": False,
    }, done.stderr
    validate = subprocess.run(
        [sys.executable, "-m", "claudesec", "config", "validate"],
        capture_output=True,
        text=True,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    assert validate.returncode == 2 and "proxy.listen_port" in validate.stderr


def test_a_bad_scan_section_stops_the_hook_with_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "claudesec.toml").write_text("[scan]\njobs = 'many'\n", encoding="utf-8")
    done = _hook(tmp_path, ".", "--no-git")
    assert json.loads(done.stdout.splitlines()[-1])["code"] == 2
    assert done.stderr.count("\n") == 1 and "scan.jobs" in done.stderr, done.stderr

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from claudesec import __version__
from claudesec.cli import main as app_module
from claudesec.cli.main import invoke
from claudesec.errors import (
    INTERRUPTED_LINE,
    CheckFailed,
    ExitCode,
    ExternalServiceError,
    PartialFailure,
)
from tests.fixtures.cli import REPO_ROOT, RunCli
from tests.fixtures.keys import KeyFactory

HEAVY = ("boto3", "botocore", "anthropic", "keyring", "rich")


@pytest.mark.parametrize("argv", [["--help"], ["scan", "--help"], ["config", "--help"]])
def test_help_does_not_import_heavy_sdks(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from claudesec.cli.main import invoke\n"
        f"rc = invoke({argv!r})\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('LOADED=' + ','.join(loaded))\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "LOADED=\n" in proc.stdout, proc.stdout.splitlines()[-1]


def test_version(run_cli: RunCli) -> None:
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"claudesec {__version__}"


def test_python_dash_m_runs_the_cli(run_subprocess: RunCli) -> None:
    result = run_subprocess("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_unknown_command_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("frobnicate")
    assert result.exit_code == ExitCode.USAGE
    assert "claudesec: error: no such command 'frobnicate'" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (("scna",), "claudesec: error: no such command 'scna' (did you mean 'scan'?)"),
        (("keys", "rotat"), "claudesec: error: no such command 'rotat' (did you mean 'rotate'?)"),
        (
            ("logs", "tail", "--formt", "json"),
            "claudesec: error: no such option '--formt' (did you mean '--format'?)",
        ),
    ],
)
def test_mistyped_commands_and_options_get_one_line_with_a_suggestion(
    run_cli: RunCli, argv: tuple[str, ...], line: str
) -> None:
    result = run_cli(*argv)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == line + "\n"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ("scan", "--formt", "json", "."),
            "claudesec: error: scan: unrecognized arguments: --formt (did you mean '--format'?)",
        ),
        (
            ("scan", "--bogus"),
            "claudesec: error: scan: unrecognized arguments: --bogus (see claudesec scan --help)",
        ),
    ],
)
def test_the_fast_scan_path_reports_usage_errors_in_the_same_format(
    run_subprocess: RunCli, argv: tuple[str, ...], line: str
) -> None:
    result = run_subprocess(*argv)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == line + "\n"


def test_config_error_is_one_line_exit_2_without_traceback(
    run_subprocess: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "claudesec.toml").write_text("[keys\n", encoding="utf-8")
    result = run_subprocess("config", "validate", cwd=tmp_path)
    assert result.exit_code == ExitCode.USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("claudesec: error: ")
    assert "claudesec.toml:1" in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_env_shows_the_traceback(run_subprocess: RunCli, tmp_path: Path) -> None:
    (tmp_path / "claudesec.toml").write_text("[keys\n", encoding="utf-8")
    os.environ["CLAUDESEC_DEBUG"] = "1"
    try:
        result = run_subprocess("config", "validate", cwd=tmp_path)
    finally:
        del os.environ["CLAUDESEC_DEBUG"]
    assert result.exit_code == ExitCode.USAGE
    assert "Traceback" in result.stderr


def _app_raising(error: Exception | None, code: int = 0) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def run() -> int:
        if error is not None:
            raise error
        return code

    @app.command()
    def other() -> int:
        return 0

    return app


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, ExitCode.OK),
        (CheckFailed("1 leaked key found"), ExitCode.FOUND),
        (ExternalServiceError("AWS is unreachable"), ExitCode.EXTERNAL),
        (PartialFailure("2 of 3 keys rotated"), ExitCode.PARTIAL),
    ],
)
def test_each_error_maps_to_its_documented_exit_code(
    error: Exception | None, expected: ExitCode, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke(["run"], root=_app_raising(error)) == expected
    err = capsys.readouterr().err
    if error is not None:
        assert err == f"claudesec: error: {error}\n"


def test_unexpected_exception_is_one_line_with_code_70(capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke(["run"], root=_app_raising(RuntimeError("boom"))) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "internal error: RuntimeError: boom" in err


def test_exit_codes_in_readme_match_the_enum() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, f"exit code {int(code)} missing from README"


def test_config_init_writes_a_template_that_validates(run_cli: RunCli, tmp_path: Path) -> None:
    os.chdir(tmp_path)
    assert run_cli("config", "init").exit_code == 0
    assert (tmp_path / "claudesec.toml").read_text(encoding="utf-8").startswith("# claudesec")
    assert run_cli("config", "validate").exit_code == 0
    again = run_cli("config", "init")
    assert again.exit_code == ExitCode.USAGE
    assert "already exists" in again.stderr


def test_config_init_into_unwritable_location_fails_cleanly(
    run_cli: RunCli, tmp_path: Path
) -> None:
    # A path below a regular file cannot be created, even by root (CI runs as root).
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    result = run_cli("config", "init", str(blocker / "claudesec.toml"))
    assert result.exit_code == ExitCode.EXTERNAL
    assert result.stderr.startswith("claudesec: error: cannot write")
    assert "Traceback" not in result.output


def test_config_show_reports_sources_and_redacts_secrets(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_redact import fake_anthropic_key

    key = fake_anthropic_key()
    (tmp_path / "claudesec.toml").write_text(
        f'[keys]\nmax_age_days = 30\n[audit]\napp = "{key}"\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLAUDESEC_SCAN_JOBS", "2")
    result = run_cli("config", "show", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    values = data["values"]
    assert values["keys.max_age_days"] == {"value": 30, "source": f"{tmp_path}/claudesec.toml:2"}
    assert values["scan.jobs"] == {"value": 2, "source": "env CLAUDESEC_SCAN_JOBS"}
    assert values["keys.overlap_hours"]["source"] == "default"
    assert key not in result.output
    assert values["audit.app"]["value"].startswith("sk-ant-api03-")


def test_config_show_table_when_asked(run_cli: RunCli) -> None:
    result = run_cli("config", "show", "--format", "table")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "key\tvalue\tsource"
    assert "keys.max_age_days\t90\tdefault" in result.stdout


def test_scan_fast_path_accepts_the_same_options_as_the_typer_command() -> None:
    from claudesec.cli.completion import command_tree
    from claudesec.scan.__main__ import parser

    typer_options = {
        opt
        for node in command_tree(typer.main.get_command(app_module.app))
        if node.path == "scan"
        for opt, _ in node.options
    }
    argparse_options = {opt for action in parser()._actions for opt in action.option_strings}
    # --config and --help are global options of the Typer app, given before "scan".
    assert typer_options - {"--help"} == argparse_options - {"-c", "--config", "-h", "--help"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["scan", "--staged"], ["--staged"]),
        (["--config", "x.toml", "scan", "."], [".", "--config", "x.toml"]),
        (["-c", "x.toml", "scan"], ["--config", "x.toml"]),
        (["scan", "--help"], None),
        (["logs", "tail"], None),
        ([], None),
    ],
)
def test_only_plain_scan_calls_take_the_fast_path(
    argv: list[str], expected: list[str] | None
) -> None:
    from claudesec.cli.entry import plain_scan_args

    assert plain_scan_args(argv) == expected


def test_scan_through_the_console_script_uses_the_fast_path(tmp_path: Path) -> None:
    (tmp_path / "clean.txt").write_text("nothing here\n", encoding="utf-8")
    code = (
        "import sys\n"
        "from claudesec.cli import entry\n"
        "try:\n"
        f"    entry.run(['scan', '--no-git', {str(tmp_path)!r}])\n"
        "except SystemExit as exc:\n"
        "    print('typer' in sys.modules and 'built' or 'fast', exc.code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.stdout.split() == ["fast", "0"], proc.stderr


def test_root_help_lines_match_each_group_s_own_help() -> None:
    for name, (_, help_line) in app_module.COMMANDS.items():
        command = app_module.load_command(name)
        assert command.get_short_help_str(limit=1000) == help_line, name


def test_root_help_builds_no_command_group() -> None:
    code = (
        "import sys\n"
        "from claudesec.cli.main import invoke\n"
        "rc = invoke(['--help'])\n"
        "print('GROUPS=' + ','.join(m for m in sys.modules if m.startswith('claudesec.cli.')"
        " and m not in ('claudesec.cli.main',)))\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "GROUPS="
    for name in app_module.COMMANDS:
        assert f"  {name} " in proc.stdout


@pytest.mark.parametrize(
    ("argv", "missing", "extra"),
    [(["proxy"], "aiohttp", "proxy"), (["mesh", "render", "--kind", "istio"], "yaml", "proxy")],
)
def test_a_missing_extra_is_one_clear_line_with_the_install_command(
    argv: list[str], missing: str, extra: str
) -> None:
    # A base install (`pip install claudesec`) lacks the optional dependencies: hide them.
    code = (
        "import sys\n"
        f"sys.modules[{missing!r}] = None\n"
        "import importlib.util\n"
        "real = importlib.util.find_spec\n"
        f"importlib.util.find_spec = lambda n, *a: None if n == {missing!r} else real(n, *a)\n"
        "from claudesec.cli.main import invoke\n"
        f"sys.exit(invoke({argv!r}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"claudesec: error: claudesec {argv[0]} needs the optional '{extra}' dependencies "
        f"({missing} is not installed) (pip install 'claudesec[{extra}]')"
    ]


# Ctrl-C lands while a module is still being imported (the first tens of milliseconds), before
# any command has its own handler: a finder that raises it stands in for the keypress.
INTERRUPTED_IMPORT = """
import sys
from importlib.abc import MetaPathFinder

class Interrupted(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[1]:
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupted())
from claudesec.cli.entry import run
run(sys.argv[2:])
"""


@pytest.mark.parametrize(
    ("module", "argv"),
    [("claudesec.scan.__main__", ["scan", "."]), ("claudesec.cli.main", ["config", "show"])],
)
def test_ctrl_c_during_start_up_is_one_line_and_exit_130(module: str, argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_IMPORT, module, *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert (proc.returncode, proc.stderr) == (ExitCode.INTERRUPTED, INTERRUPTED_LINE + "\n")


# A scan with nothing to load (no --config, no CLAUDESEC_CONFIG, no file found, no override)
# takes [scan]'s defaults; with something to load it builds [scan] alone. Neither imports the
# whole schema (claudesec.config): 17 ms of a pre-commit hook's run.
LOADED_FOR_A_SCAN = """
import json, sys
from claudesec.scan.__main__ import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "config": "claudesec.config" in sys.modules}))
"""


@pytest.mark.parametrize(
    ("config", "env", "whole", "code"),
    [
        (None, {}, False, 1),
        ("claudesec.toml", {}, False, 0),  # its exclude_paths hides the key
        ("pyproject.toml", {}, False, 0),
        (None, {"CLAUDESEC_SCAN_EXCLUDE_PATHS": '["*.env"]'}, False, 0),
        (None, {"CLAUDESEC_DEBUG": "1"}, False, 1),  # not an override
    ],
)
def test_a_scan_applies_its_section_without_importing_the_whole_schema(
    tmp_path: Path, config: str | None, env: dict[str, str], whole: bool, code: int
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.env").write_text("TOKEN=" + KeyFactory(85).npm().value + "\n")
    table = '[scan]\nexclude_paths = ["*.env"]\n'
    if config == "pyproject.toml":
        (tree / config).write_text("[project]\nname = 'x'\n\n[tool.claudesec." + table[1:])
    elif config is not None:
        (tree / config).write_text(table)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDESEC_")}
    proc = subprocess.run(
        [sys.executable, "-c", LOADED_FOR_A_SCAN, ".", "--no-git"],
        capture_output=True,
        text=True,
        cwd=tree,
        env={**environ, **env, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    assert json.loads(proc.stdout.splitlines()[-1]) == {"code": code, "config": whole}, proc.stderr

"""Finding and reading a config file into typed dataclasses: discovery (``--config``,
``CLAUDESEC_CONFIG``, the nearest file upwards), TOML with line-numbered errors,
``CLAUDESEC_*`` environment overrides, and the checks every key goes through.

The schema is elsewhere (:mod:`claudesec.config`, :mod:`claudesec.config_scan`); this module
builds any of its dataclasses from a table, so a scan can build its one section without
importing the other twenty (:func:`claudesec.config_scan.load_scan_config`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from claudesec.errors import ConfigError


def _close_matches(word: str, possibilities: list[str], n: int) -> list[str]:
    import difflib  # only when there is a problem to name: ~1.3 ms of every scan's start

    return difflib.get_close_matches(word, possibilities, n=n)


CONFIG_FILENAMES = ("claudesec.toml", ".claudesec.toml")
ENV_PREFIX = "CLAUDESEC_"
# Environment variables with a meaning of their own, not config overrides.
RESERVED_ENV = frozenset({"CLAUDESEC_HOME", "CLAUDESEC_CONFIG", "CLAUDESEC_DEBUG"})


def find_config_file(start: Path) -> Path | None:
    """The nearest config file from ``start`` upwards: claudesec.toml, .claudesec.toml, or a
    pyproject.toml with a ``[tool.claudesec]`` table."""
    for directory in (start, *start.parents):
        for name in CONFIG_FILENAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    return None


def _has_tool_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r"^\s*\[tool\.claudesec[\].]", text, re.MULTILINE) is not None


def nothing_to_load(
    path: Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Whether :func:`claudesec.config.load_config` would return the embedded defaults:
    no ``--config``, no ``CLAUDESEC_CONFIG``, no file found from ``cwd`` upwards and no
    ``CLAUDESEC_*`` override in the environment."""
    env = os.environ if environ is None else environ
    if path is not None or env.get("CLAUDESEC_CONFIG"):
        return False
    if any(name.startswith(ENV_PREFIX) and name not in RESERVED_ENV for name in env):
        return False
    return find_config_file(cwd or Path.cwd()) is None


def config_file(
    path: Path | None, *, cwd: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The file a load reads: ``path`` (``--config``), then ``CLAUDESEC_CONFIG``, then the
    nearest one from ``cwd`` upwards; None for none. A named file that is missing is an error."""
    env = os.environ if environ is None else environ
    if path is None and env.get("CLAUDESEC_CONFIG"):
        path = Path(env["CLAUDESEC_CONFIG"])
        if not path.is_file():
            raise ConfigError(
                "CLAUDESEC_CONFIG names a file that does not exist",
                path=str(path),
                hint="unset CLAUDESEC_CONFIG or point it at a claudesec.toml",
            )
    elif path is not None and not path.is_file():
        raise ConfigError("config file not found", path=str(path), hint="check the --config path")
    if path is None:
        path = find_config_file(cwd or Path.cwd())
    return path


def open_config(
    path: Path | None,
    *,
    cwd: Path | None,
    environ: Mapping[str, str],
    sections: Mapping[str, type[Any]],
    collect: bool = False,
) -> tuple[dict[str, Any], Context]:
    """The tables a load builds from (the file's, with the overrides for ``sections`` folded
    in) and the context its checks report through."""
    found = config_file(path, cwd=cwd, environ=environ)
    data: dict[str, Any] = {}
    text = ""
    if found is not None:
        text, data = read_toml(found)
    sources: dict[str, str] = {}
    apply_env(data, environ, sources, sections)
    return data, Context(found, text, sources, collecting=collect)


def check_keys(data: Mapping[str, Any], known: Collection[str], prefix: str, ctx: Context) -> None:
    """Every key of the table at ``prefix`` ("" for the top level) is known, or each unknown one
    is named, with the closest known one."""
    for key in data:
        if key not in known:
            dotted = f"{prefix}.{key}" if prefix else key
            path, line = ctx.where(dotted)
            close = _close_matches(key, sorted(known), n=1)
            ctx.problem(
                ConfigError(
                    f"unknown key '{dotted}'",
                    path=path,
                    line=line,
                    hint=f"did you mean '{close[0]}'?"
                    if close
                    else f"known keys: {', '.join(sorted(known))}",
                )
            )


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file: {exc.strerror or exc}",
            path=str(path),
            hint="check its permissions",
        ) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "config file is not valid UTF-8",
            path=str(path),
            line=raw[: exc.start].count(b"\n") + 1,
            hint="save it as UTF-8 text",
        ) from exc
    import tomllib  # here: a run with no config file never pays its import (~10 ms)

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts the position only in the message: "... (at line 3, column 9)".
        found = re.search(r"line (\d+)", str(exc))
        line: int | None = int(found.group(1)) if found else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(
            f"invalid TOML: {message}",
            path=str(path),
            line=line,
            hint="fix the syntax; `claudesec config validate` re-checks it",
        ) from exc
    if path.name == "pyproject.toml":
        tool = document.get("tool", {})
        section = tool.get("claudesec", {}) if isinstance(tool, dict) else {}
        return text, section if isinstance(section, dict) else {}
    return text, document


def apply_env(
    data: dict[str, Any],
    env: Mapping[str, str],
    sources: dict[str, str],
    sections: Mapping[str, type[Any]],
) -> None:
    """Fold ``CLAUDESEC_<SECTION>_<KEY>`` variables of ``sections`` into ``data`` (a variable
    naming another section is left to whoever loads that one)."""
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            continue
        key = rest[len(section) + 1 :]
        hints = get_type_hints(sections[section])
        if key not in hints:
            known = [f"{ENV_PREFIX}{section.upper()}_{k.upper()}" for k in hints]
            close = _close_matches(name, known, n=1)
            raise ConfigError(
                f"unknown environment override {name}",
                hint=f"did you mean {close[0]}?" if close else "unset it",
            )
        try:
            parsed = _parse_env_value(value, hints[key])
        except ValueError as exc:
            raise ConfigError(
                f"{name}: expected {_describe(hints[key])}, got {value!r}",
                hint="fix or unset the variable",
            ) from exc
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            data[section] = {}
        data[section][key] = parsed
        sources[f"{section}.{key}"] = f"env {name}"


def _parse_env_value(value: str, hint: Any) -> Any:
    origin = get_origin(hint)
    if hint is bool:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if hint is int:
        return int(value)
    if hint is float:
        return float(value)
    if origin is tuple:
        stripped = value.strip()
        if stripped.startswith("["):
            import tomllib

            return tomllib.loads(f"v = {stripped}")["v"]
        return [item.strip() for item in stripped.split(",") if item.strip()]
    if origin is dict:
        import tomllib

        return tomllib.loads(f"v = {value}")["v"]
    return value


@dataclass
class Context:
    """What one load has read: the file and its text, where each value came from, and the
    problems found."""

    path: Path | None
    text: str
    sources: dict[str, str]
    collecting: bool = False
    problems: list[ConfigError] = field(default_factory=list)

    def problem(self, error: ConfigError) -> None:
        """Raise ``error``, or note it and go on when collecting every problem."""
        if not self.collecting:
            raise error
        self.problems.append(error)

    def where(self, dotted: str) -> tuple[str | None, int | None]:
        if self.path is None:
            return None, None
        return str(self.path), _locate(self.text, dotted, self.path.name == "pyproject.toml")


def _locate(text: str, dotted: str, in_pyproject: bool) -> int | None:
    """Best-effort line number of ``dotted`` (``section.key``) in the TOML text."""
    parts = dotted.split(".")
    if in_pyproject:
        parts = ["tool", "claudesec", *parts]
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", stripped)
        if header:
            table = [p.strip().strip("\"'") for p in header.group(1).split(".")]
            if table == parts:
                return number
            continue
        assign = re.match(r"^([A-Za-z0-9_.\"'-]+)\s*=", stripped)
        if assign:
            key = [p.strip().strip("\"'") for p in assign.group(1).split(".")]
            if table + key == parts or (len(key) > 1 and key == parts[-len(key) :]):
                return number
    return None


def build(cls: type[Any], data: Any, prefix: str, ctx: Context) -> Any:
    label = prefix or "top level"
    if not isinstance(data, dict):
        path, line = ctx.where(prefix)
        raise ConfigError(f"'{label}' must be a table, got {_kind(data)}", path=path, line=line)
    if "preset" in data and getattr(cls, "takes_preset", False):
        data = _with_preset(data, prefix, ctx)
    hints = get_type_hints(cls)
    check_keys(data, {f.name for f in dataclasses.fields(cls)}, prefix, ctx)
    values: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, spec in fields.items():  # declaration order: problems come in a stable order
        if name not in data:
            continue
        dotted = f"{prefix}.{name}" if prefix else name
        try:
            values[name] = _convert(hints[name], data[name], dotted, ctx)
            _check_domain(values[name], spec, dotted, ctx)
        except ConfigError as exc:
            values.pop(name, None)  # the default stands in while other keys are checked
            ctx.problem(exc)
            continue
        if dataclasses.is_dataclass(hints[name]):
            continue
        if dotted not in ctx.sources:
            path, line = ctx.where(dotted)
            ctx.sources[dotted] = f"{path}:{line}" if line else str(path)
    return cls(**values)


def _with_preset(data: dict[str, Any], prefix: str, ctx: Context) -> dict[str, Any]:
    """A role's table with its preset's values under the ones it sets itself."""
    from claudesec.role_presets import PRESETS

    name = data["preset"]
    if not isinstance(name, str) or not name:
        return data  # _convert names the wrong type; an empty preset means none
    preset = PRESETS.get(name)
    if preset is None:
        path, line = ctx.where(f"{prefix}.preset")
        close = _close_matches(name, sorted(PRESETS), n=1)
        ctx.problem(
            ConfigError(
                f"unknown preset {name!r} in '{prefix}.preset'",
                path=path,
                line=line,
                hint=f"did you mean {close[0]!r}?"
                if close
                else f"presets: {', '.join(sorted(PRESETS))}",
            )
        )
        return data
    for key in preset.settings:
        if key not in data:
            ctx.sources.setdefault(f"{prefix}.{key}", f"preset {name}")
    return {**preset.values(), **data}


def _check_domain(value: Any, spec: dataclasses.Field[Any], dotted: str, ctx: Context) -> None:
    """A negative number, or 0 where the field must be positive, names the key and the bound."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    positive = bool(spec.metadata.get("positive"))
    if value < 0 or (positive and value == 0):
        path, line = ctx.where(dotted)
        bound = "greater than 0" if positive else "0 or more"
        raise ConfigError(f"'{dotted}' must be {bound}, got {value!r}", path=path, line=line)


def _convert(hint: Any, value: Any, dotted: str, ctx: Context) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)

    def wrong() -> ConfigError:
        path, line = ctx.where(dotted)
        return ConfigError(
            f"'{dotted}' must be {_describe(hint)}, got {_kind(value)}",
            path=path,
            line=line,
        )

    if dataclasses.is_dataclass(hint):
        return build(hint, value, dotted, ctx)  # type: ignore[arg-type]
    if hint is Any:  # a table whose own checker validates it (federation)
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise wrong()
        return value
    if origin is Literal:
        if value not in args:
            raise wrong()
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise wrong()
        return tuple(_convert(args[0], item, dotted, ctx) for item in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise wrong()
        return {str(k): _convert(args[1], v, f"{dotted}.{k}", ctx) for k, v in value.items()}
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        trial = dataclasses.replace(ctx, collecting=False, problems=[])
        for option in args:
            try:
                return _convert(option, value, dotted, trial)
            except ConfigError:
                continue
        raise wrong()
    raise TypeError(f"unsupported config type {hint!r}")  # a bug in the schema, not user input


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if origin is tuple:
        return f"an array of {_describe(get_args(hint)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(hint):
        return "a table"
    return str(hint)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__

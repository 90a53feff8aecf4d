"""Click options generated from settings records (`fat.core.settings`): one flag per field,
with the field's help, default and choices, so a setting is declared once.

Every generated option defaults to None, which means "not given on the command line": the
record's own default, a settings file or a saved run then decides (`given_settings`).
"""

import json
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

import click

from fat.core.errors import FatError
from fat.core.settings import Settings, field_default
from fat.store.remote import store_location

# Options people set once per machine or shell: FAT_STORE=... fat train ... acts as --store.
ENV_DEFAULTS = {"store": "FAT_STORE", "device": "FAT_DEVICE", "workers": "FAT_WORKERS"}


class StoreLocation(click.ParamType):
    """A store on the command line: a local path (a Path), or a URL such as s3://bucket/f.zarr
    (kept as a string, which a Path would mangle)."""

    name = "store"

    def convert(self, value: Any, param: Any, ctx: Any) -> Path | str:
        return store_location(value)


STORE_LOCATION = StoreLocation()


def store_option(help: str, dest: str = "store", **kw: Any) -> Callable:
    """`--store PATH|URL` (or $FAT_STORE) for the commands whose --store is not a generated
    one."""
    return click.option(
        "--store",
        dest,
        type=STORE_LOCATION,
        envvar=ENV_DEFAULTS["store"],
        show_envvar=True,
        help=help,
        **kw,
    )


def table_format_option(help: str, choices: tuple[str, ...] = ("table", "csv", "json")) -> Callable:
    """`--format table|csv|json` (default table), as `fmt`: every command's way to ask for
    machine-readable output."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default="table",
        show_default=True,
        help=help,
    )


def from_environment(names: list[str] | tuple[str, ...]) -> set[str]:
    """Which of the current command's parameters took their value from a FAT_ variable."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return set()
    env = click.core.ParameterSource.ENVIRONMENT
    return {n for n in names if ctx.get_parameter_source(n) == env}


def settings_file_option(what: str) -> Callable:
    """`--config FILE`: a JSON or TOML file of settings that flags given with it override."""
    return sectioned_option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path),
        help=f"JSON or TOML file of {what}; flags given with it override it.",
    )


def flag_of(f: Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


START = "Start from"  # --help's first heading: recipes, settings files, resuming
OTHER = "Other options"


class SectionOption(click.Option):
    """An option listed under a heading (`section`) in a `SectionedCommand`'s --help."""

    def __init__(self, *args: Any, section: str | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.section = section


class SectionedCommand(click.Command):
    """--help lists options under headings (their `section`): START, then `sections` in
    their order, then any other heading as it first appears; options without one last."""

    def __init__(self, *args: Any, sections: tuple[str, ...] = (), **kw: Any):
        super().__init__(*args, **kw)
        self.sections = sections

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        groups: dict[str, list[tuple[str, str]]] = {h: [] for h in (START, *self.sections)}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                groups.setdefault(getattr(param, "section", None) or OTHER, []).append(record)
        groups[OTHER] = groups.pop(OTHER, [])
        for heading, records in groups.items():
            if records:
                with formatter.section(heading):
                    formatter.write_dl(records)


def sectioned_option(*decls: str, section: str = START, **kw: Any) -> Callable:
    """A hand-written option under `section` of a `SectionedCommand`'s --help."""
    return click.option(*decls, cls=SectionOption, section=section, **kw)


def _base_type(hint: Any) -> Any:
    """`int | None` -> int: the type a command-line value is read as."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _help(f: Field) -> str:
    text = f.metadata.get("help", "")
    default = field_default(f)
    if f.metadata.get("derived"):
        return f"{text} [default: {f.metadata['derived']}]"
    if default is MISSING or default is False or default in ("", {}, (), []):
        return text
    return f"{text} [default: {_shown(default)}]"


def _option(f: Field, hint: Any) -> Callable:
    kind = _base_type(hint)
    origin = typing.get_origin(kind)
    choices = f.metadata.get("choices")
    common: dict[str, Any] = {
        "default": None,
        "help": _help(f),
        "cls": SectionOption,
        "section": f.metadata.get("section"),
    }
    flags = [flag_of(f)] + ([f.metadata["short"]] if f.metadata.get("short") else [])
    if f.name in ENV_DEFAULTS:
        common |= {"envvar": ENV_DEFAULTS[f.name], "show_envvar": True}
    if kind is bool:
        if field_default(f) is True:  # on by default: the flag pair turns it off
            name = f.name.replace("_", "-")
            return click.option(f"--{name}/--no-{name}", f.name, **common)
        return click.option(*flags, f.name, is_flag=True, **common)
    if origin is dict and typing.get_args(kind)[1] is Any:  # free-form: repeatable KEY=VALUE
        common["default"] = ()
        return click.option(*flags, f.name, multiple=True, metavar="KEY=VALUE", **common)
    if origin is dict:
        return click.option(*flags, f.name, metavar="NAME=NUMBER,...", **common)
    if origin is tuple:
        return click.option(*flags, f.name, metavar="A,B,...", **common)
    click_type = click.Choice(choices) if choices else {int: int, float: float}.get(kind, str)
    return click.option(*flags, f.name, type=click_type, **common)


def settings_options(*classes: type[Settings], exclude: tuple[str, ...] = ()) -> Callable:
    """A decorator adding one option per field of each settings class (except `exclude`)."""

    def decorate(command: Callable) -> Callable:
        for cls in reversed(classes):
            hints = typing.get_type_hints(cls)
            for f in reversed(fields(cls)):
                if f.name not in exclude:
                    command = _option(f, hints[f.name])(command)
        return command

    return decorate


def _parse_pairs(text: str, flag: str) -> dict[str, float]:
    """`a=0.6,b=0.4` -> {"a": 0.6, "b": 0.4}; bad items name themselves."""
    pairs = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            pairs[key.strip()] = float(value)
        except ValueError:
            raise FatError(f"{flag}: expected name=number, got {item!r}") from None
    return pairs


def _parse_items(items: tuple[str, ...], flag: str) -> dict[str, Any]:
    """Repeated `KEY=VALUE`, the value read as JSON when it parses (numbers, booleans)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FatError(f"{flag}: expected key=value, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def settings_flags(cls: type[Settings], settings: dict[str, Any]) -> list[str]:
    """The command-line arguments that give `settings` (fields of `cls`), as `given_settings`
    reads them back: lists comma-joined, weights as name=number, a model's settings as
    repeated KEY=VALUE, switches by their flag."""
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in fields(cls)}
    args: list[str] = []
    for name, value in settings.items():
        f = by_name[name]
        kind = _base_type(hints[name])
        origin = typing.get_origin(kind)
        if kind is bool:
            if bool(value) != bool(field_default(f)):
                on = field_default(f) is not True
                args.append(flag_of(f) if on else "--no-" + name.replace("_", "-"))
        elif origin is dict and typing.get_args(kind)[1] is Any:
            for key, item in value.items():
                args += [flag_of(f), f"{key}={json.dumps(item)}"]
        elif value not in ({}, [], ()):
            args += [flag_of(f), _shown(value)]
    return args


def given_settings(cls: type[Settings], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop `cls`'s generated options from a command's `kwargs`; return those given on the
    command line, parsed to the field types (the record checks them)."""
    hints = typing.get_type_hints(cls)
    given = {}
    for f in fields(cls):
        if f.name not in kwargs:
            continue
        value = kwargs.pop(f.name)
        if value is None or value == ():
            continue
        kind = _base_type(hints[f.name])
        origin = typing.get_origin(kind)
        if origin is dict and typing.get_args(kind)[1] is Any:
            value = _parse_items(value, flag_of(f))
        elif origin is dict:
            value = _parse_pairs(value, flag_of(f))
        elif origin is tuple:
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        given[f.name] = value
    return given

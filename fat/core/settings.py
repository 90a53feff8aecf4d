"""Typed settings records: the single source of truth for what a setting is called, its type,
default, choices and help text. The CLI generates its options from them, files load into
them, and every store and run saves them.

A settings class is a frozen dataclass deriving from `Settings` whose fields are declared with
`setting(...)`. Construction checks every field's type and choices (from Python, from a file,
from the command line alike), so a wrong value is refused by name instead of failing later.
"""

import functools
import json
import tomllib
import types
import typing
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from fat.core.errors import FatError
from fat.core.textfiles import read_text


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    flag: str | None = None,
    resumable: bool = False,
    derived: str | None = None,
    section: str | None = None,
    short: str | None = None,
) -> Any:
    """A dataclass field with its help text. `choices`: the allowed values; `flag`: the CLI
    flag when not `--field-name`; `resumable`: may change when a run is resumed; `derived`:
    for a default of None, what the value follows (shown in --help); `section`: the heading
    it is listed under in --help; `short`: a one-letter flag besides the long one."""
    metadata = {
        "help": help,
        "choices": choices,
        "flag": flag,
        "resumable": resumable,
        "derived": derived,
        "section": section,
        "short": short,
    }
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _type_name(kind: Any) -> str:
    if kind is Any:
        return "any value"
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(k) for k in typing.get_args(kind))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(kind)[0])}"
    if origin is dict:
        return f"a mapping of names to {_type_name(typing.get_args(kind)[1])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        kind, "None" if kind is type(None) else getattr(kind, "__name__", str(kind))
    )


_WRONG = object()


def _coerce(kind: Any, value: Any) -> Any:
    """`value` as `kind` (an int is a valid float, a list a valid tuple), or `_WRONG`."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(kind):
            out = _coerce(option, value)
            if out is not _WRONG:
                return out
        return _WRONG
    if kind is type(None):
        return None if value is None else _WRONG
    if kind is bool:
        return value if isinstance(value, bool) else _WRONG
    if kind is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _WRONG
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else _WRONG
    if kind is str:
        return value if isinstance(value, str) else _WRONG
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return _WRONG
        items = [_coerce(typing.get_args(kind)[0], v) for v in value]
        return _WRONG if any(v is _WRONG for v in items) else tuple(items)
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return _WRONG
        values = {k: _coerce(typing.get_args(kind)[1], v) for k, v in value.items()}
        return _WRONG if any(v is _WRONG for v in values.values()) else values
    return value if isinstance(value, kind) else _WRONG


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@dataclass(frozen=True)
class Settings:
    """Base of every settings record: checked on construction, saved and loaded as a dict."""

    # What the record is called in messages ("train config", "feature config", ...).
    KIND: typing.ClassVar[str] = "settings"

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            out = _coerce(hints[f.name], value)
            if out is _WRONG:
                raise FatError(
                    f"{self.KIND}: {f.name} must be {_type_name(hints[f.name])}, got {value!r}"
                )
            choices = f.metadata.get("choices")
            if choices and out is not None and out not in choices:
                raise FatError(
                    f"{self.KIND}: {f.name} must be one of {', '.join(map(str, choices))}, "
                    f"got {value!r}"
                )
            if out is not value:
                object.__setattr__(self, f.name, out)
        problems = self.problems()
        if problems:
            raise FatError(f"invalid {self.KIND}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong beyond types and choices (ranges, combinations); empty when valid."""
        return []

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """A record from saved or user-given values; unknown keys are refused by name (a file
        from another version or with a typo must not load silently wrong)."""
        if not isinstance(values, dict):
            raise FatError(
                f"{cls.KIND}: expected a mapping of settings, got {type(values).__name__}"
            )
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise FatError(f"{cls.KIND}: unknown setting(s) {', '.join(unknown)}")
        return cls(**values)

    def replace(self, **changes: Any) -> Self:
        return type(self).from_dict({**self.to_dict(), **changes})

    def differences(self, other: "Settings") -> list[str]:
        """`name: mine != theirs` for every setting that differs."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b[k]]


def field_default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def read_settings_file(path: Path) -> dict[str, Any]:
    """A JSON or (by its .toml suffix) TOML file of settings, as a dict; FatError naming the
    file and the problem otherwise."""
    path = Path(path)
    text = read_text(path, "settings file")
    try:
        values = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise FatError(
            f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'} ({e})"
        ) from None
    if not isinstance(values, dict):
        raise FatError(f"{path}: expected an object of settings, got {type(values).__name__}")
    return values

"""Typed settings records: the single source of truth for what a setting is called, its type,
default, choices and help text. The CLI generates its options from them, files load into
them, and every store and run saves them.

A settings class is a frozen dataclass deriving from `Settings` whose fields are declared with
`setting(...)`. Construction checks every field's type, choices and range (from Python, from a
file, from the command line, a run's config.json, a checkpoint or a store alike), so a wrong
value is refused by name instead of failing later, or allocating for it first.
"""

import functools
import json
import math
import os
import tomllib
import types
import typing
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from fat.core.errors import FatError
from fat.core.textfiles import read_text


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on (cgroups, taskset)
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


# Worker processes a setting may ask for here: 4 per usable core (loader and decoding workers
# wait on disk and network), at least 8 (a small container still overlaps its I/O), at most 256
# (each is a Python process with its own memory: thousands of them exhaust any machine).
MAX_WORKERS = min(256, max(8, 4 * _usable_cores()))
MAX_WORKERS_HELP = "Its bound: 4 per usable core, kept within 8..256."


def _number(value: float) -> str:
    """`value` for a message: exact, except integers too long to read (or to print at all)."""
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)


def _end(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """The values a number may take: `low` to `high`, either end open (excluded). Integer
    ends, both closed, read `low..high`; others as an interval, `(0, 4]`."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __str__(self) -> str:
        closed = not (self.low_open or self.high_open)
        if closed and isinstance(self.low, int) and isinstance(self.high, int):
            return f"{self.low}..{self.high}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{left}{_end(self.low)}, {_end(self.high)}{right}"

    def refusal(self, name: str, value: float) -> str | None:
        """Why `value` of `name` is outside, with the range, in one line; None when inside.
        Exact for integers of any size (never converted to float); NaN is outside any range."""
        if value != value:
            return f"need {name} in {self}, got nan"
        if value <= self.low if self.low_open else value < self.low:
            bound = f"{'>' if self.low_open else '>='} {_end(self.low)}"
        elif value >= self.high if self.high_open else value > self.high:
            bound = f"{'<' if self.high_open else '<='} {_end(self.high)}"
        else:
            return None
        return f"need {name} {bound} (range {self}), got {_number(value)}"


def _range(low: Any, high: Any, above: Any, below: Any) -> Range | None:
    """The range `setting`'s bounds give, or None for none; one end given alone is an error
    (a number open at one end lets 1e308 or -1e308 through)."""
    if (low, high, above, below) == (None,) * 4:
        return None
    if (low is None) == (above is None) or (high is None) == (below is None):
        raise TypeError("a range needs one of low/above and one of high/below")
    return Range(
        above if low is None else low,
        below if high is None else high,
        low_open=low is None,
        high_open=high is None,
    )


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    below: float | None = None,
    flag: str | None = None,
    resumable: bool = False,
    derived: str | None = None,
    section: str | None = None,
    short: str | None = None,
) -> Any:
    """A dataclass field with its help text. `choices`: the allowed values; `low`/`high`: the
    ends of the allowed range of a number (of each number of a mapping), `above`/`below`
    instead where the end itself is excluded, checked on construction and shown in --help;
    integer settings take integer ends; `flag`: the CLI flag when not `--field-name`;
    `resumable`: may change when a run is resumed; `derived`: for a default of None, what the
    value follows (shown in --help); `section`: the heading it is listed under in --help;
    `short`: a one-letter flag besides the long one."""
    bounds = _range(low, high, above, below)
    metadata = {
        "help": help if bounds is None else f"{help} [range: {bounds}]",
        "choices": choices,
        "range": bounds,
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
        if not isinstance(value, int | float) or isinstance(value, bool):
            return _WRONG
        try:
            return float(value)
        except OverflowError:  # an integer past float's range: infinite, so no range holds it
            return math.inf if value > 0 else -math.inf
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


def _numbers(name: str, value: Any) -> list[tuple[str, float]]:
    """(name, number) of each number in a setting's value: itself, or each of a mapping's
    values (`name[key]`) or a list's items (`name[i]`); None and text have none."""
    if isinstance(value, dict):
        items = [(f"{name}[{k}]", v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        items = [(f"{name}[{i}]", v) for i, v in enumerate(value)]
    else:
        items = [(name, value)]
    return [(n, v) for n, v in items if isinstance(v, int | float) and not isinstance(v, bool)]


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
        refused = []
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
            bounds = f.metadata.get("range")
            if bounds is not None:
                # The given numbers, not the converted ones: an integer compares exactly.
                refused += filter(None, (bounds.refusal(n, v) for n, v in _numbers(f.name, value)))
        if refused:  # before problems(), which may compute with the values
            raise FatError(f"invalid {self.KIND}: " + "; ".join(refused))
        problems = self.problems()
        if problems:
            raise FatError(f"invalid {self.KIND}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong beyond types, choices and ranges (combinations of settings); empty
        when valid. Runs once every range holds."""
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
    except ValueError as e:  # a syntax error, or an integer of thousands of digits
        raise FatError(
            f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'} ({e})"
        ) from None
    if not isinstance(values, dict):
        raise FatError(f"{path}: expected an object of settings, got {type(values).__name__}")
    return values

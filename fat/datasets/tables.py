"""Reading the tables data sets ship (CSV files with or without a header, comment lines,
quoted lists), and choosing which of a data set's splits to read: shared by the adapters."""

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fat.core.errors import FatError
from fat.core.textfiles import read_text


@dataclass
class Table:
    """A CSV as read: its header (stripped, lower case; empty when it has none), its
    well-formed rows with the line each starts on, and its malformed rows with the reason."""

    path: Path
    header: tuple[str, ...]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # line, first cell, why


def read_table(
    path: Path,
    what: str,
    *,
    header: Sequence[str] | None = None,
    width: int | None = None,
    comments: bool = False,
) -> Table:
    """Read the CSV at `path` (UTF-8 with or without a byte-order mark; spaces after commas
    skipped, so `a, "b,c"` is two fields). With `width`, the file has no header and every row
    has `width` fields; otherwise its first row is the header, which must be `header` when
    given. Blank rows are skipped, and so are rows starting with `#` when `comments`. A row
    with another field count, or one the csv module cannot parse, is malformed; a missing or
    wrong header is a FatError naming the file."""
    path = Path(path)
    text = read_text(path, what)
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    table = Table(path, ())
    expected = len(header) if header is not None else width
    need_header = width is None
    while True:
        line = reader.line_num + 1  # a quoted field may span lines: report where the row starts
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            if need_header:
                raise FatError(f"{path}:{line}: not a readable CSV ({e})") from None
            table.malformed.append((line, "", f"malformed row ({e})"))
            continue
        cells = [cell.strip() for cell in row]
        if not any(cells) or (comments and cells[0].startswith("#")):
            continue
        if need_header:
            named = tuple(cell.lower() for cell in cells)
            if header is not None and named != tuple(header):
                raise FatError(
                    f"{path}:{line}: header must be '{','.join(header)}', got '{','.join(cells)}'"
                )
            table.header, expected, need_header = named, len(named), False
            continue
        if len(cells) != expected:
            reason = f"malformed row: {len(cells)} fields, expected {expected}"
            table.malformed.append((line, cells[0], reason))
            continue
        table.rows.append((line, cells))
    if need_header:
        wanted = f" '{','.join(header)}'" if header is not None else ""
        raise FatError(f"{path}: empty; expected a CSV with the header{wanted}")
    return table


def split_cell(cell: str) -> tuple[str, ...]:
    """The names of a comma-separated field, stripped, empty ones and repeats dropped."""
    return tuple(dict.fromkeys(name.strip() for name in cell.split(",") if name.strip()))


def chosen_splits(
    requested: list[str] | None, available: Sequence[str], dataset: str, where: Path
) -> list[str]:
    """The splits to read: `requested` (repeats dropped) or, for None, all `available`;
    FatError naming `where` for a split the data set does not have."""
    if requested is None:
        return list(available)
    for name in requested:
        if name not in available:
            raise FatError(
                f"{where}: the {dataset} data set has no split {name!r}; "
                f"it has {', '.join(available) or 'none'}"
            )
    return list(dict.fromkeys(requested))

"""Label vocabulary and FSDKaggle2019 label CSVs (`fname,labels`) parsed to multi-hot targets.

Every problem in a CSV is reported with file, line and value. The caller picks the policy:
`strict=True` stops at the first problem with a FatError; otherwise bad rows are skipped and
returned as `LabelIssue`s so a summary can list them (what featurize does by default).
"""

import csv
import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from fat.core.errors import FatError
from fat.core.ids import check_clip_id
from fat.core.textfiles import read_text


def official_vocabulary() -> tuple[str, ...]:
    """The 80 FSDKaggle2019 class names in `sample_submission.csv` column order."""
    text = resources.files("fat").joinpath("data/vocabulary.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def read_vocabulary(sample_submission: Path | None = None) -> tuple[str, ...]:
    """Vocabulary from a sample submission's header (columns after `fname`), else the official."""
    if sample_submission is None or not Path(sample_submission).exists():
        return official_vocabulary()
    text = read_text(Path(sample_submission), "sample submission")
    header = next(csv.reader(io.StringIO(text, newline="")), None)
    header = [cell.strip() for cell in header or []]
    if not header or header[0] != "fname" or len(header) < 2:
        raise FatError(f"{sample_submission}:1: header must be 'fname,<class>,...', got {header!r}")
    seen: dict[str, int] = {}
    for column, name in enumerate(header[1:], start=2):
        reason = check_class_name(name)
        if reason:
            raise FatError(f"{sample_submission}:1: column {column}: {reason}")
        if name in seen:
            raise FatError(
                f"{sample_submission}:1: column {column}: class {name!r} again "
                f"(first in column {seen[name]})"
            )
        seen[name] = column
    return tuple(header[1:])


def check_class_name(name: str) -> str | None:
    """Why `name` cannot be a class name, or None: label fields list classes comma-separated,
    so a name must be non-empty and free of commas, quotes and control characters."""
    if not name:
        return "empty class name"
    if any(c in name for c in ',"') or not name.isprintable():
        return f"class name {name!r} has a comma, a quote or a control character"
    return None


@dataclass(frozen=True)
class LabelIssue:
    """One rejected row: where it is, which clip, and why."""

    file: str
    line: int
    fname: str
    reason: str

    def __str__(self) -> str:
        who = f" {self.fname}" if self.fname else ""
        return f"{self.file}:{self.line}:{who}: {self.reason}"


@dataclass
class LabelTable:
    """Clip ids with multi-hot targets over `vocabulary`, plus the rows that were rejected."""

    vocabulary: tuple[str, ...]
    fnames: list[str]
    targets: np.ndarray  # (n_clips, n_classes) uint8
    issues: list[LabelIssue] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.fnames)

    def labels_of(self, i: int) -> list[str]:
        return [self.vocabulary[j] for j in np.flatnonzero(self.targets[i])]


def encode_labels(names: list[str], vocabulary: tuple[str, ...]) -> np.ndarray:
    """Multi-hot uint8 vector for `names`; raises KeyError on a name outside the vocabulary."""
    index = {name: i for i, name in enumerate(vocabulary)}
    target = np.zeros(len(vocabulary), dtype=np.uint8)
    for name in names:
        target[index[name]] = 1
    return target


def read_labels_csv(
    path: Path, vocabulary: tuple[str, ...], strict: bool = False, labelled: bool = True
) -> LabelTable:
    """Parse a `fname,labels` CSV (or, with `labelled=False`, any CSV whose first column is fname).
    Columns after those two are ignored: the post-competition CSVs of FSDKaggle2019 (e.g.
    test_post_competition.csv, the test split's labels) add usage, freesound_id and license.

    Rejected rows: malformed (wrong field count), invalid or duplicated fname, empty label
    field, label outside the vocabulary. With `strict`, the first one raises FatError.
    """
    path = Path(path)
    index = {name: i for i, name in enumerate(vocabulary)}
    fnames: list[str] = []
    rows: list[np.ndarray] = []
    issues: list[LabelIssue] = []
    seen: dict[str, int] = {}

    def reject(line: int, fname: str, reason: str) -> None:
        issue = LabelIssue(str(path), line, fname, reason)
        if strict:
            raise FatError(str(issue))
        issues.append(issue)

    text = read_text(path, "label file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as e:
        raise FatError(f"{path}:1: not a readable CSV ({e})") from None
    named = [cell.strip() for cell in header or []]
    if not named or named[0] != "fname" or (labelled and named[1:2] != ["labels"]):
        expected = "fname,labels" if labelled else "fname,..."
        raise FatError(f"{path}:1: header must be '{expected}', got {','.join(header or [])!r}")
    width = len(header)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except (csv.Error, UnicodeDecodeError) as e:
            reject(reader.line_num, "", f"malformed row ({e})")
            continue
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines carry nothing
        if len(row) != width:
            reject(line, row[0], f"malformed row: {len(row)} fields, expected {width}")
            continue
        fname = row[0].strip()
        bad_id = check_clip_id(fname)
        if bad_id:
            reject(line, fname, bad_id)
            continue
        if fname in seen:
            reject(line, fname, f"duplicated fname (first on line {seen[fname]})")
            continue
        target = np.zeros(len(vocabulary), dtype=np.uint8)
        if labelled:
            names = [name.strip() for name in row[1].split(",") if name.strip()]
            if not names:
                reject(line, fname, "empty label field")
                continue
            unknown = [name for name in names if name not in index]
            if unknown:
                reject(line, fname, f"unknown label {unknown[0]!r}")
                continue
            target[[index[name] for name in names]] = 1
        seen[fname] = line
        fnames.append(fname)
        rows.append(target)
    targets = np.stack(rows) if rows else np.zeros((0, len(vocabulary)), dtype=np.uint8)
    return LabelTable(vocabulary=vocabulary, fnames=fnames, targets=targets, issues=issues)

"""The `csv` data set: a user's own table of audio files and labels. Also the clip-id
derivation the folders data set shares."""

import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fat.core.errors import FatError
from fat.core.ids import check_clip_id
from fat.core.labels import check_class_name
from fat.core.textfiles import read_text
from fat.datasets.base import (
    ClipEntry,
    Dataset,
    DatasetListing,
    DatasetOptions,
    Issue,
    SplitListing,
    checked_entry,
    require,
)
from fat.datasets.tables import chosen_splits, read_table, split_cell

_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.\-()+]")


def _readable_id(parts: Sequence[str]) -> str:
    """Path parts joined by `__`, characters a clip id cannot hold as `_`."""
    text = re.sub(r"\.{2,}", "_", "__".join(_NOT_IN_ID.sub("_", part) for part in parts))
    return text if re.match(r"[A-Za-z0-9_]", text) else "_" + text


def clip_ids_for(paths: Sequence[Path], base: Path) -> dict[Path, str]:
    """A unique, valid clip id for each of `paths` (files under `base`, or absolute ones
    elsewhere): its file name where that is a valid id no other path shares; else its path
    relative to `base` with separators as `__` and characters outside [A-Za-z0-9_.-()+] as `_`
    (`dogs/a b.wav` -> `dogs__a_b.wav`); where even that is taken or too long, the file stem
    cut to 80 characters, `-`, the CRC-32 of the relative path in hex, and the suffix."""
    unique = list(dict.fromkeys(paths))
    names: dict[str, int] = {}
    for path in unique:
        names[path.name] = names.get(path.name, 0) + 1
    ids: dict[Path, str] = {}
    for path in unique:  # plain names first, so a derived id never takes one
        if names[path.name] == 1 and check_clip_id(path.name) is None:
            ids[path] = path.name
    taken = set(ids.values())
    for path in unique:
        if path in ids:
            continue
        try:
            parts = path.relative_to(base).parts
        except ValueError:
            parts = path.parts[1:]  # an absolute path elsewhere: all of it but the root
        clip_id = _readable_id(parts)
        if clip_id in taken or check_clip_id(clip_id) is not None:
            crc = zlib.crc32("/".join(parts).encode("utf-8", "surrogateescape"))
            stem = _readable_id([Path(path.name).stem])[:80]
            clip_id = f"{stem}-{crc:08x}{_readable_id([path.suffix])[1:]}"
        ids[path] = clip_id
        taken.add(clip_id)
    return ids


@dataclass
class _Row:
    """One well-formed manifest row: where, which split (None: not a valid name), the file,
    its labels, its facts, and why it cannot be taken (None: it can)."""

    line: int
    split: str | None
    path: Path
    labels: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


PATH_COLUMNS = ("path", "file", "filename", "fname")
LABEL_COLUMNS = ("labels", "label")
DEFAULT_SPLIT = "train"


def _first_column(header: Sequence[str], names: Sequence[str]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def read_vocabulary_file(path: Path) -> tuple[str, ...]:
    """Class names one per line, in order (blank lines skipped); FatError naming the line of
    a name that cannot be a class name or comes twice."""
    names: dict[str, int] = {}
    for line, text in enumerate(read_text(path, "vocabulary").splitlines(), 1):
        name = text.strip()
        if not name:
            continue
        reason = check_class_name(name)
        if reason is None and name in names:
            reason = f"class {name!r} again (first on line {names[name]})"
        if reason is not None:
            raise FatError(f"{path}:{line}: {reason}")
        names[name] = line
    if not names:
        raise FatError(f"{path}: no class names; expected one name per line")
    return tuple(names)


class CsvManifest(Dataset):
    """A user's own table of clips (options.manifest, a CSV; or ROOT itself when it is a file),
    audio anywhere:

        path,labels,split,fold
        audio/dog_01.wav,dog,train,1
        /data/more/cat 7.mp3,"cat,purr",test,2

    Columns (header names, any case, extra columns ignored): the audio file in `path` (else
    `file`, `filename` or `fname`, the first present), relative to the manifest's folder or
    absolute; its class names, comma-separated, in `labels` (else `label`); optionally
    `split` (empty or absent: "train") and `fold` (a non-negative integer, kept in info).
    The vocabulary is options.vocabulary (one name per line, in order) when given, else the
    sorted names the table's rows use (all rows, whichever splits are read, so every split
    gets the same vocabulary). A split whose rows all have empty labels is unlabelled.

    Clip ids: the file's name (dog_01.wav) where it is a valid id that no other listed file
    shares; else the path relative to the manifest's folder with separators as `__` and other
    characters as `_` (`a/x.wav` and `b/x.wav` -> `a__x.wav`, `b__x.wav`; `cat 7.mp3` ->
    `cat_7.mp3`); see `clip_ids_for`.

    Single-label rule: the listing is single-label when every listed clip of a labelled split
    has exactly one label (the trainer then uses softmax and the headline metric is accuracy);
    one clip with two labels makes it multi-label (sigmoid; headline mAP, the class's
    `headline`; `headline_metric` gives accuracy for a single-label listing)."""

    name = "csv"
    description = "your own CSV of audio files and labels (path,labels[,split][,fold]): --manifest"
    headline = "map"

    def read(self, root: Path, splits: list[str] | None, options: DatasetOptions) -> DatasetListing:
        manifest = options.manifest
        if manifest is None:
            if root is None or not Path(root).is_file():
                raise FatError(
                    f"{root}: the csv data set reads a manifest (a CSV of path,labels); "
                    "give it with --manifest"
                )
            manifest = Path(root)
        manifest = require(Path(manifest), "the manifest CSV (path,labels[,split][,fold])", "csv")
        table = read_table(manifest, "manifest")
        where = str(manifest)
        path_col = _first_column(table.header, PATH_COLUMNS)
        label_col = _first_column(table.header, LABEL_COLUMNS)
        if path_col is None or label_col is None:
            raise FatError(
                f"{manifest}:1: header needs a path column (path, file, filename or fname) and a "
                f"labels column (labels or label); got '{','.join(table.header)}'"
            )
        split_col = _first_column(table.header, ("split",))
        fold_col = _first_column(table.header, ("fold",))
        base = Path(os.path.abspath(manifest.parent))  # ids and paths alike, whatever the cwd

        # First the table's own facts (split, labels), which fix the vocabulary and splits.
        rows: list[_Row] = []
        for line, cells in table.rows:
            split = (cells[split_col] if split_col is not None else "") or DEFAULT_SPLIT
            row = _Row(line, split, base / cells[path_col], split_cell(cells[label_col]))
            row.path = Path(os.path.normpath(row.path))
            if check_clip_id(split) is not None:
                row.split, row.reason = None, f"split {split!r} is not a valid split name"
            elif not cells[path_col]:
                row.reason = "empty path"
            for name in row.labels:
                row.reason = row.reason or check_class_name(name)
            if fold_col is not None and row.reason is None:
                fold = cells[fold_col]
                if fold.isascii() and fold.isdigit():
                    row.info["fold"] = int(fold)
                else:
                    row.reason = f"fold {fold!r} is not a non-negative integer"
            rows.append(row)
        if options.vocabulary is not None:
            path = require(Path(options.vocabulary), "a file of class names", "csv")
            vocabulary = read_vocabulary_file(path)
        else:
            vocabulary = tuple(
                sorted({n for row in rows if row.reason is None for n in row.labels})
            )
        present = list(dict.fromkeys(row.split for row in rows if row.split is not None))
        wanted = chosen_splits(splits, present or [DEFAULT_SPLIT], "csv", manifest)

        index = {name: i for i, name in enumerate(vocabulary)}
        ids = clip_ids_for([row.path for row in rows if row.reason is None], base)
        listing = {name: SplitListing(name) for name in wanted}
        for name, split in listing.items():
            split.labelled = any(row.labels for row in rows if row.split == name and not row.reason)
        # Rows whose split cannot be told are reported under the first split read.
        first = listing[wanted[0]] if wanted else SplitListing(DEFAULT_SPLIT)
        for line, cell, reason in table.malformed:
            first.issues.append(Issue(where, line, cell, reason))
        seen: set[str] = set()
        for row in rows:
            if row.split is not None and row.split not in listing:
                continue
            split = listing[row.split] if row.split is not None else first
            if row.reason is not None:
                split.issues.append(Issue(where, row.line, row.path.name, row.reason))
                continue
            clip = ClipEntry(ids[row.path], row.path, row.labels, row.info)
            checked_entry(split, clip, index, (where, row.line), seen)
        labelled = [clip for split in listing.values() if split.labelled for clip in split.clips]
        single = bool(labelled) and all(len(clip.labels) == 1 for clip in labelled)
        return DatasetListing(self.name, vocabulary, listing, single_label=single)

"""What `fat featurize` reads: which splits a data directory holds, and the clips of one split
with their targets (its CSV, or its folder, and an answer key), checked before any work."""

from pathlib import Path

import numpy as np

from fat.core.errors import FatError
from fat.core.ids import check_clip_id, shard_of
from fat.core.labels import LabelIssue, LabelTable, read_labels_csv
from fat.core.layout import SPLITS, SplitLayout, check_data_dir, split_layout
from fat.featurize.report import SkippedClip

# What counts as audio when a CSV that lists nothing is held against its folder.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")


def missing_folder(data_dir: Path, layout: SplitLayout) -> str:
    """Why split `layout` cannot be read from `data_dir` (its folder is not there) and what to
    do, in one line: the Kaggle download holds each split as a zip to unpack first."""
    archive = data_dir / f"{layout.folder}.zip"
    if archive.is_file():
        return (
            f"{data_dir} holds {archive.name} but no {layout.folder}/ folder: unzip it first "
            f"(unzip {archive} -d {data_dir / layout.folder})"
        )
    return (
        f"{data_dir}: no {layout.folder}/ folder for split {layout.name!r} "
        "(expected the FSDKaggle2019 layout)"
    )


def splits_to_featurize(data_dir: Path, split: str) -> tuple[list[str], list[str]]:
    """The splits `--split` asks for, and a warning for each split of "all" that is not there.
    "all" is every split whose folder `data_dir` holds; FatError when it holds none."""
    if split != "all":
        return [split_layout(split).name], []
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FatError(f"{data_dir}: no such data directory")
    present = [name for name, layout in SPLITS.items() if (data_dir / layout.folder).is_dir()]
    absent = [layout for name, layout in SPLITS.items() if name not in present]
    if not present:
        # An error, not "nothing to do": a directory without any split is a wrong --data-dir
        # or a download not unpacked, and a run that wrote nothing must not look like success.
        raise FatError(_no_split_at_all(data_dir, absent))
    # Warnings: featurizing the splits that are there is useful (many train on the curated
    # one alone), but a split left out must be said, not pass in silence.
    return present, [f"{missing_folder(data_dir, layout)}; skipped" for layout in absent]


def _no_split_at_all(data_dir: Path, layouts: list[SplitLayout]) -> str:
    unpack = [
        missing_folder(data_dir, layout)
        for layout in layouts
        if (data_dir / f"{layout.folder}.zip").is_file()
    ]
    if unpack:
        return "; ".join(unpack)
    folders = ", ".join(f"{layout.folder}/" for layout in layouts)
    archives = sorted(p.name for p in data_dir.glob("*.zip"))
    if archives:
        return (
            f"{data_dir}: none of {folders} is there, only {', '.join(archives)}: unzip "
            f"it first (unzip {data_dir / archives[0]} -d {data_dir})"
        )
    return f"{data_dir}: none of {folders} is there (expected the FSDKaggle2019 layout)"


def audio_files(folder: Path) -> list[Path]:
    """The files directly in `folder` whose suffix says audio."""
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]


def clip_table(
    data_dir: Path, split: str, labels_file: Path | None, vocab: tuple[str, ...], strict: bool
) -> tuple[LabelTable, bool, list[SkippedClip]]:
    """The clips to featurize with their targets, whether the split is labelled, and the
    CSV rows that were rejected."""
    layout = split_layout(split)
    if Path(data_dir).is_dir() and not (data_dir / layout.folder).is_dir():
        raise FatError(missing_folder(data_dir, layout))
    check_data_dir(data_dir, layout)
    csv_path = data_dir / layout.csv
    if layout.labelled:
        clips = read_labels_csv(csv_path, vocab, strict=strict)
    elif csv_path.exists():
        clips = read_labels_csv(csv_path, vocab, strict=strict, labelled=False)
    else:  # no clip list: every file in the folder, under a name that can be a clip id
        names, issues = [], []
        for p in sorted((data_dir / layout.folder).iterdir()):
            if p.is_file():
                reason = check_clip_id(p.name)
                if reason:
                    issues.append(LabelIssue(str(p), 0, p.name, f"{reason}; rename the file"))
                else:
                    names.append(p.name)
        targets = np.zeros((len(names), len(vocab)), np.uint8)
        clips = LabelTable(vocab, names, targets, issues)
    if csv_path.exists() and not clips.fnames and not clips.issues:
        _check_not_empty_by_mistake(csv_path, data_dir / layout.folder, layout.labelled)
    rejected = [SkippedClip(i.file, i.line or None, i.fname, i.reason) for i in clips.issues]
    if layout.labelled or labels_file is None:
        return clips, layout.labelled, rejected
    answers = read_labels_csv(labels_file, vocab, strict=strict)
    rejected += [SkippedClip(i.file, i.line, i.fname, i.reason) for i in answers.issues]
    row = {name: i for i, name in enumerate(answers.fnames)}
    keep = [name for name in clips.fnames if name in row]
    rejected += [
        SkippedClip(str(labels_file), None, name, "no labels in the answer key")
        for name in clips.fnames
        if name not in row
    ]
    targets = answers.targets[[row[name] for name in keep]]
    return LabelTable(vocab, keep, targets), True, rejected


def _check_not_empty_by_mistake(csv_path: Path, folder: Path, labelled: bool) -> None:
    """An error, not a warning, for a clip list without a row beside a folder of audio: it is
    the wrong or a truncated CSV, and an empty split written with exit 0 would pass for done."""
    audio = audio_files(folder)
    if audio:
        rows = "fname,labels" if labelled else "fname,..."
        raise FatError(
            f"{csv_path}: lists no clips, while {folder}/ holds {len(audio)} audio file(s); "
            f"it needs one row per clip ({rows}): is it the right CSV?"
        )


def shard(
    table: LabelTable, rejected: list[SkippedClip], index: int, shards: int
) -> tuple[LabelTable, list[SkippedClip]]:
    """The part of a split shard `index` of `shards` owns: its clips, and the rejected rows
    of those clips (rows without a name go to shard 0, so each is reported once)."""
    keep = [i for i, name in enumerate(table.fnames) if shard_of(name, shards) == index]
    mine = [r for r in rejected if (shard_of(r.clip_id, shards) if r.clip_id else 0) == index]
    names = [table.fnames[i] for i in keep]
    return LabelTable(table.vocabulary, names, table.targets[keep], table.issues), mine

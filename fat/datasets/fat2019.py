"""FSDKaggle2019 (Kaggle "freesound-audio-tagging-2019"; Zenodo record 3612637), in the
Kaggle download's layout:

    ROOT/train_curated/*.wav   ROOT/train_curated.csv   fname,labels     -> split "curated"
    ROOT/train_noisy/*.wav     ROOT/train_noisy.csv     fname,labels     -> split "noisy"
    ROOT/test/*.wav            ROOT/sample_submission.csv  fname + the 80 classes -> "test"

The vocabulary is sample_submission.csv's columns, in order. The test split is labelled when
an answer key is given (`DatasetOptions.labels`, fname,labels: e.g. the post-competition
test_post_competition.csv); without sample_submission.csv's rows, every file in test/ is a
clip."""

from pathlib import Path

import numpy as np

from fat.core.audio_files import audio_files_under
from fat.core.errors import FatError
from fat.core.ids import check_clip_id
from fat.core.labels import LabelIssue, LabelTable, read_labels_csv, read_vocabulary
from fat.core.layout import SAMPLE_SUBMISSION, SPLITS, SplitLayout, check_data_dir
from fat.datasets.base import (
    ClipEntry,
    Dataset,
    DatasetListing,
    DatasetOptions,
    Issue,
    SplitListing,
)


class FSDKaggle2019(Dataset):
    name = "fat2019"
    description = (
        "FSDKaggle2019 as Kaggle ships it: train_curated/, train_noisy/, test/ with their "
        "CSVs and sample_submission.csv (kaggle.com/c/freesound-audio-tagging-2019)"
    )
    splits = tuple(SPLITS)
    headline = "lwlrap"

    def read(self, root: Path, splits: list[str] | None, options: DatasetOptions) -> DatasetListing:
        root = Path(root)
        names, notes = present_splits(root, splits)
        vocabulary = read_vocabulary(root / SAMPLE_SUBMISSION)
        listing = DatasetListing(self.name, vocabulary, {}, notes=notes)
        for name in names:
            labels = options.labels if name == "test" else None
            listing.splits[name] = _split_listing(root, SPLITS[name], vocabulary, labels)
        return listing


def present_splits(root: Path, splits: list[str] | None) -> tuple[list[str], list[str]]:
    """The splits asked for (None: every split whose folder `root` holds), and a note for each
    split left out; FatError when `root` holds none, or not one asked for by name."""
    if not root.is_dir():
        raise FatError(f"{root}: no such data directory")
    for name in splits or []:
        if name not in SPLITS:
            raise FatError(f"unknown split {name!r} of fat2019; choose from {', '.join(SPLITS)}")
        if not (root / SPLITS[name].folder).is_dir():
            raise FatError(missing_folder(root, SPLITS[name]))
    if splits:
        return list(splits), []
    present = [n for n, layout in SPLITS.items() if (root / layout.folder).is_dir()]
    absent = [layout for n, layout in SPLITS.items() if n not in present]
    if not present:
        # An error, not "nothing to do": a directory without any split is a wrong --data-dir
        # or a download not unpacked, and a run that wrote nothing must not look like success.
        raise FatError(_no_split_at_all(root, absent))
    # Notes, not errors: featurizing the splits that are there is useful (many train on the
    # curated one alone), but a split left out must be said.
    return present, [f"{missing_folder(root, layout)}; skipped" for layout in absent]


def missing_folder(root: Path, layout: SplitLayout) -> str:
    """Why split `layout` cannot be read from `root` (its folder is not there) and what to
    do, in one line: the Kaggle download holds each split as a zip to unpack first."""
    archive = root / f"{layout.folder}.zip"
    if archive.is_file():
        return (
            f"{root} holds {archive.name} but no {layout.folder}/ folder: unzip it first "
            f"(unzip {archive} -d {root / layout.folder})"
        )
    return (
        f"{root}: no {layout.folder}/ folder for split {layout.name!r} "
        "(expected the FSDKaggle2019 layout)"
    )


def _no_split_at_all(root: Path, layouts: list[SplitLayout]) -> str:
    unpack = [missing_folder(root, la) for la in layouts if (root / f"{la.folder}.zip").is_file()]
    if unpack:
        return "; ".join(unpack)
    folders = ", ".join(f"{layout.folder}/" for layout in layouts)
    archives = sorted(p.name for p in root.glob("*.zip"))
    if archives:
        return (
            f"{root}: none of {folders} is there, only {', '.join(archives)}: unzip "
            f"it first (unzip {root / archives[0]} -d {root})"
        )
    return f"{root}: none of {folders} is there (expected the FSDKaggle2019 layout)"


def _split_listing(
    root: Path, layout: SplitLayout, vocabulary: tuple[str, ...], answer_key: Path | None
) -> SplitListing:
    """One split's clips with their labels, and the CSV rows that were rejected."""
    check_data_dir(root, layout)
    folder, csv_path = root / layout.folder, root / layout.csv
    if layout.labelled:
        table = read_labels_csv(csv_path, vocabulary)
    elif csv_path.exists():
        table = read_labels_csv(csv_path, vocabulary, labelled=False)
    else:
        table = _folder_table(folder, vocabulary)
    if csv_path.exists() and not table.fnames and not table.issues:
        _check_not_empty_by_mistake(csv_path, folder, layout.labelled)
    issues = [Issue(i.file, i.line or None, i.fname, i.reason) for i in table.issues]
    labelled = layout.labelled
    if not layout.labelled and answer_key is not None:
        table, more = _with_answers(table, answer_key, vocabulary)
        issues += more
        labelled = True
    clips = [
        ClipEntry(name, folder / name, tuple(vocabulary[k] for k in np.flatnonzero(row)))
        for name, row in zip(table.fnames, table.targets, strict=True)
    ]
    return SplitListing(layout.name, clips, labelled, issues)


def _folder_table(folder: Path, vocabulary: tuple[str, ...]) -> LabelTable:
    """No clip list: every file in the folder, under a name that can be a clip id."""
    names, issues = [], []
    for p in sorted(folder.iterdir()):
        if p.is_file():
            reason = check_clip_id(p.name)
            if reason:
                issues.append(LabelIssue(str(p), 0, p.name, f"{reason}; rename the file"))
            else:
                names.append(p.name)
    return LabelTable(vocabulary, names, np.zeros((len(names), len(vocabulary)), np.uint8), issues)


def _with_answers(
    table: LabelTable, answer_key: Path, vocabulary: tuple[str, ...]
) -> tuple[LabelTable, list[Issue]]:
    """The clips the answer key labels, with its labels; an issue for each it does not."""
    answers = read_labels_csv(answer_key, vocabulary)
    issues = [Issue(i.file, i.line, i.fname, i.reason) for i in answers.issues]
    row = {name: i for i, name in enumerate(answers.fnames)}
    keep = [name for name in table.fnames if name in row]
    issues += [
        Issue(str(answer_key), None, name, "no labels in the answer key")
        for name in table.fnames
        if name not in row
    ]
    return LabelTable(vocabulary, keep, answers.targets[[row[n] for n in keep]]), issues


def _check_not_empty_by_mistake(csv_path: Path, folder: Path, labelled: bool) -> None:
    """An error, not a warning, for a clip list without a row beside a folder of audio: it is
    the wrong or a truncated CSV, and an empty split written with exit 0 would pass for done."""
    audio = audio_files_under(folder)
    if audio:
        rows = "fname,labels" if labelled else "fname,..."
        raise FatError(
            f"{csv_path}: lists no clips, while {folder}/ holds {len(audio)} audio file(s); "
            f"it needs one row per clip ({rows}): is it the right CSV?"
        )

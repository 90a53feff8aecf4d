"""FSD50K as published on Zenodo: its audio folders and its ground-truth CSVs."""

from pathlib import Path

from fat.core.errors import FatError
from fat.core.labels import check_class_name
from fat.datasets.base import (
    ClipEntry,
    Dataset,
    DatasetListing,
    DatasetOptions,
    Issue,
    SplitListing,
    checked_entry,
    require,
    unlisted_audio,
)
from fat.datasets.tables import Table, chosen_splits, read_table, split_cell

DEV_AUDIO = "FSD50K.dev_audio"
EVAL_AUDIO = "FSD50K.eval_audio"
GROUND_TRUTH = "FSD50K.ground_truth"
DEV_HEADER = ("fname", "labels", "mids", "split")
EVAL_HEADER = ("fname", "labels", "mids")
DEV_SPLITS = ("train", "val")


def read_fsd50k_vocabulary(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """vocabulary.csv (rows `index,label,mid`, no header) -> (labels, mids) in index order;
    FatError naming the line of anything else, since the classes fix every split's targets."""
    expected = "expected rows 'index,label,mid' with an integer index and no header"
    table = read_table(path, "FSD50K vocabulary", width=3)
    if table.malformed:
        line, _, reason = table.malformed[0]
        raise FatError(f"{path}:{line}: {reason}; {expected}")
    classes: dict[int, tuple[str, str]] = {}
    labels: dict[str, int] = {}
    mids: dict[str, int] = {}
    for line, (index, label, mid) in table.rows:
        if not (index.isascii() and index.isdigit()):
            raise FatError(f"{path}:{line}: {expected}, got '{index},{label},{mid}'")
        reason = check_class_name(label) or (None if mid else "empty mid")
        if reason is None:
            for value, kind, firsts in ((label, "label", labels), (mid, "mid", mids)):
                if reason is None and value in firsts:
                    reason = f"{kind} {value!r} again (first on line {firsts[value]})"
                firsts.setdefault(value, line)
        if reason is None and int(index) in classes:
            reason = f"index {index} again"
        if reason is not None:
            raise FatError(f"{path}:{line}: {reason}")
        classes[int(index)] = (label, mid)
    if not classes:
        raise FatError(f"{path}: no classes; {expected}")
    ordered = [classes[i] for i in sorted(classes)]
    return tuple(label for label, _ in ordered), tuple(mid for _, mid in ordered)


def _missing(root: Path, split: str) -> str | None:
    """What split `split` lacks under `root` (its audio folder or its CSV), or None."""
    folder, table = (EVAL_AUDIO, "eval.csv") if split == "eval" else (DEV_AUDIO, "dev.csv")
    for path in (root / folder, root / GROUND_TRUTH / table):
        if not path.exists():
            archive = path.with_name(path.name + ".zip")
            unzip = f" (unpack {archive.name} first)" if archive.is_file() else ""
            return f"{path}: missing{unzip}"
    return None


class FSD50K(Dataset):
    """FSD50K (Fonseca et al., 2022), downloaded from Zenodo (https://zenodo.org/records/4060432:
    the split FSD50K.dev_audio and FSD50K.eval_audio zips and FSD50K.ground_truth.zip),
    unpacked side by side under ROOT:

        ROOT/FSD50K.dev_audio/<fname>.wav        train and val clips
        ROOT/FSD50K.eval_audio/<fname>.wav       eval clips
        ROOT/FSD50K.ground_truth/dev.csv         fname,labels,mids,split (train or val)
        ROOT/FSD50K.ground_truth/eval.csv        fname,labels,mids
        ROOT/FSD50K.ground_truth/vocabulary.csv  index,label,mid (no header): the 200 classes

    Splits train and val (dev.csv's split column) and eval. The vocabulary is vocabulary.csv's
    labels in index order, the class ids their AudioSet mids. A clip's id is its file name
    (`64760.wav`), its info empty (the mids follow from the labels). A dev.csv row whose split
    cannot be told, and a dev audio file no row lists, is reported under train (under val
    when only val is read). Read whole (no splits named), a split whose audio folder or CSV
    is missing is left out with a note; named, it is a FatError. Multi-label: the headline
    metric is mAP."""

    name = "fsd50k"
    description = (
        "FSD50K (zenodo.org/records/4060432): FSD50K.dev_audio, .eval_audio, .ground_truth"
    )
    splits = ("train", "val", "eval")
    headline = "map"

    def read(self, root: Path, splits: list[str] | None, options: DatasetOptions) -> DatasetListing:
        root = Path(root)
        if not root.is_dir():
            raise FatError(f"{root}: no such data directory (expected the FSD50K layout)")
        wanted = chosen_splits(splits, self.splits, self.name, root)
        truth = require(root / GROUND_TRUTH, "the ground-truth CSVs", self.name)
        vocab_path = require(truth / "vocabulary.csv", "index,label,mid rows", self.name)
        vocabulary, mids = read_fsd50k_vocabulary(vocab_path)
        mid_of = dict(zip(vocabulary, mids, strict=True))
        notes = []
        if splits is None:
            # Notes, not errors: many download the dev set alone; a split left out is said.
            absent = {name: _missing(root, name) for name in wanted}
            present = [name for name in wanted if absent[name] is None]
            notes = [f"{absent[name]}; split {name!r} skipped" for name in wanted if absent[name]]
            wanted, notes = (present, notes) if present else (wanted, [])
        listing = {name: SplitListing(name) for name in wanted}

        dev = [name for name in DEV_SPLITS if name in listing]
        if dev:
            folder = require(root / DEV_AUDIO, "the dev (train and val) audio", self.name)
            csv_path = require(truth / "dev.csv", "fname,labels,mids,split rows", self.name)
            table = read_table(csv_path, "FSD50K dev.csv", header=DEV_HEADER)
            self._read_rows(table, folder, {n: listing[n] for n in dev}, mid_of)
        if "eval" in listing:
            folder = require(root / EVAL_AUDIO, "the eval audio", self.name)
            csv_path = require(truth / "eval.csv", "fname,labels,mids rows", self.name)
            table = read_table(csv_path, "FSD50K eval.csv", header=EVAL_HEADER)
            self._read_rows(table, folder, {"eval": listing["eval"]}, mid_of)
        return DatasetListing(self.name, vocabulary, listing, class_ids=mids, notes=notes)

    @staticmethod
    def _read_rows(
        table: Table, folder: Path, targets: dict[str, SplitListing], mid_of: dict[str, str]
    ) -> None:
        """Rows of dev.csv (a split column) or eval.csv (one split) into `targets`; audio in
        `folder` that no row lists is an issue of the first target."""
        where = str(table.path)
        fallback = next(iter(targets.values()))  # rows whose split cannot be told
        index = {name: i for i, name in enumerate(mid_of)}
        listed: set[Path] = set()
        seen: set[str] = set()
        for line, cell, reason in table.malformed:
            fallback.issues.append(Issue(where, line, f"{cell}.wav" if cell else "", reason))
            if cell:
                listed.add(folder / f"{cell}.wav")
        has_split = "split" in table.header
        for line, cells in table.rows:
            fname, labels_cell, mids_cell = cells[:3]
            clip_id = f"{fname}.wav"
            path = folder / clip_id
            listed.add(path)
            split, reason = fallback, None
            if has_split:
                name = cells[3]
                if name in targets:
                    split = targets[name]
                elif name not in DEV_SPLITS:
                    reason = f"split {name!r} is not train or val"
                else:
                    continue  # a split not asked for
            labels = split_cell(labels_cell)
            if reason is None and not (fname.isascii() and fname.isdigit()):
                reason = f"fname {fname!r} is not a Freesound id (an integer)"
            known = all(label in mid_of for label in labels)  # unknown ones: checked_entry's
            expected = sorted(mid_of[label] for label in labels) if known else []
            if reason is None and known and sorted(split_cell(mids_cell)) != expected:
                reason = f"mids {mids_cell!r} do not match labels {labels_cell!r}"
            if reason is not None:
                split.issues.append(Issue(where, line, clip_id, reason))
                continue
            checked_entry(split, ClipEntry(clip_id, path, labels), index, (where, line), seen)
        unlisted_audio(folder, listed, fallback)

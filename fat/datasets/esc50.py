"""ESC-50 as published on GitHub: 2,000 five-second clips in 50 classes and five folds."""

from pathlib import Path
from typing import Any

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
from fat.datasets.tables import chosen_splits, read_table

HEADER = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
FOLDS = ("1", "2", "3", "4", "5")


class ESC50(Dataset):
    """ESC-50 (Piczak, 2015), downloaded from https://github.com/karolpiczak/ESC-50 (the
    repository's master.zip, or a clone):

        ROOT/audio/{fold}-{src_file}-{take}-{target}.wav   the 2,000 clips
        ROOT/meta/esc50.csv   filename,fold,target,category,esc10,src_file,take

    One split, train, holds every clip: the standard protocol is five-fold cross-validation
    on the folds the table gives, kept in each clip's info ({"fold": 1-5, "source": src_file,
    "take": take, "esc10": bool}). Single-label; the vocabulary is the categories ordered by
    target (0-49). A fold outside 1-5, an esc10 other than True/False, or a target and
    category that contradict an earlier row make that row an issue; so does an audio file
    no row lists. The headline metric is accuracy."""

    name = "esc50"
    description = "ESC-50 (github.com/karolpiczak/ESC-50): audio/*.wav, meta/esc50.csv, 5 folds"
    splits = ("train",)
    headline = "accuracy"

    def read(self, root: Path, splits: list[str] | None, options: DatasetOptions) -> DatasetListing:
        root = Path(root)
        if not root.is_dir():
            raise FatError(f"{root}: no such data directory (expected the ESC-50 layout)")
        wanted = chosen_splits(splits, self.splits, self.name, root)
        csv_path = require(root / "meta" / "esc50.csv", "the clip table", self.name)
        folder = require(root / "audio", "the clips ({fold}-{src}-{take}-{target}.wav)", self.name)
        table = read_table(csv_path, "ESC-50 meta table", header=HEADER)
        where = str(csv_path)
        split = SplitListing("train")
        listed: set[Path] = set()
        for line, cell, reason in table.malformed:
            split.issues.append(Issue(where, line, cell, reason))
            listed.add(folder / cell)

        category_of: dict[int, tuple[str, int]] = {}  # target -> (category, first line)
        target_of: dict[str, tuple[int, int]] = {}  # category -> (target, first line)
        rows: list[tuple[int, ClipEntry, str | None]] = []
        for line, cells in table.rows:
            filename, fold, target, category, esc10, source, take = cells
            listed.add(folder / filename)
            reason = check_class_name(category)
            number = int(target) if target.isascii() and target.isdigit() else -1
            if reason is None and number < 0:
                reason = f"target {target!r} is not a class number"
            elif reason is None and category_of.get(number, (category,))[0] != category:
                first, first_line = category_of[number]
                reason = f"target {number} is {first!r} on line {first_line}, {category!r} here"
            elif reason is None and target_of.get(category, (number,))[0] != number:
                first_number, first_line = target_of[category]
                reason = (
                    f"category {category!r} is target {first_number} on line {first_line}, "
                    f"{number} here"
                )
            elif reason is None:
                category_of.setdefault(number, (category, line))
                target_of.setdefault(category, (number, line))
            if reason is None and fold not in FOLDS:
                reason = f"fold {fold!r} is not 1-5"
            if reason is None and esc10.lower() not in ("true", "false"):
                reason = f"esc10 {esc10!r} is not True or False"
            info: dict[str, Any] = {}
            if reason is None:
                info = {"fold": int(fold), "source": source, "take": take}
                info["esc10"] = esc10.lower() == "true"
            rows.append((line, ClipEntry(filename, folder / filename, (category,), info), reason))

        vocabulary = tuple(category_of[number][0] for number in sorted(category_of))
        index = {name: i for i, name in enumerate(vocabulary)}
        seen: set[str] = set()
        for line, clip, reason in rows:
            if reason is not None:
                split.issues.append(Issue(where, line, clip.clip_id, reason))
            else:
                checked_entry(split, clip, index, (where, line), seen)
        unlisted_audio(folder, listed, split)
        listing = {name: split for name in wanted}
        return DatasetListing(self.name, vocabulary, listing, single_label=True)

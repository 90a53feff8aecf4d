"""AudioSet: Google's segment lists and class table, with audio the user downloaded."""

import math
import os
from pathlib import Path

from fat.core.audio_files import AUDIO_SUFFIXES
from fat.core.errors import FatError
from fat.core.ids import check_clip_id
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

CLASSES = "class_labels_indices.csv"
CLASS_HEADER = ("index", "mid", "display_name")
SEGMENTS = "_segments.csv"
AUDIO_FOLDERS = ("audio", "audios")  # audios/: the PANNs download scripts' name


def read_class_table(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """class_labels_indices.csv -> (display names, mids) in index order; FatError naming the
    line of a row that is not `index,mid,display_name` or repeats an index, mid or name."""
    table = read_table(path, "AudioSet class table", header=CLASS_HEADER)
    if table.malformed:
        line, _, reason = table.malformed[0]
        raise FatError(f"{path}:{line}: {reason}; expected rows 'index,mid,display_name'")
    classes: dict[int, tuple[str, str]] = {}
    firsts: dict[str, int] = {}
    for line, (index, mid, name) in table.rows:
        reason = None
        if not (index.isascii() and index.isdigit()):
            reason = f"index {index!r} is not an integer"
        elif not mid or not name:
            reason = "empty mid or display_name"
        elif int(index) in classes:
            reason = f"index {index} again"
        for value in (mid, name):
            if reason is None and value in firsts:
                reason = f"{value!r} again (first on line {firsts[value]})"
            firsts.setdefault(value, line)
        if reason is not None:
            raise FatError(f"{path}:{line}: {reason}")
        classes[int(index)] = (name, mid)
    if not classes:
        raise FatError(f"{path}: no classes; expected rows 'index,mid,display_name'")
    ordered = [classes[i] for i in sorted(classes)]
    return tuple(name for name, _ in ordered), tuple(mid for _, mid in ordered)


def _seconds_texts(start: float, end: float, as_given: tuple[str, str]) -> list[tuple[str, str]]:
    """(start, end) as file names spell them: as in the CSV (30.000), with three decimals, and
    in whole seconds (30) where the times are whole."""
    forms = [as_given, (f"{start:.3f}", f"{end:.3f}")]
    if start.is_integer() and end.is_integer():
        forms.append((str(int(start)), str(int(end))))
    return list(dict.fromkeys(forms))


def candidate_stems(ytid: str, start: float, end: float, as_given: tuple[str, str]) -> list[str]:
    """The file names (without suffix) recognised for a segment, in order of preference:
    Y<YTID>, <YTID>, then Y<YTID>_<start>, <YTID>_<start>, Y<YTID>_<start>_<end> and
    <YTID>_<start>_<end> for each spelling of the times."""
    stems = [f"Y{ytid}", ytid]
    for s, e in _seconds_texts(start, end, as_given):
        stems += [f"Y{ytid}_{s}", f"{ytid}_{s}", f"Y{ytid}_{s}_{e}", f"{ytid}_{s}_{e}"]
    return list(dict.fromkeys(stems))


def audio_index(folders: list[tuple[Path, bool]]) -> dict[str, Path]:
    """File name without suffix -> audio file, over `folders` (folder, whether to walk its
    subfolders) in order; the first file of a name wins (suffixes in sorted order)."""
    index: dict[str, Path] = {}
    for folder, recursive in folders:
        for top, dirs, files in os.walk(folder):
            dirs.sort()
            if not recursive:
                dirs.clear()
            for name in sorted(files):
                stem, suffix = os.path.splitext(name)
                if suffix.lower() in AUDIO_SUFFIXES:
                    index.setdefault(stem, Path(top) / name)
    return index


class AudioSet(Dataset):
    """AudioSet (Gemmeke et al., 2017): the segment lists and class table from
    https://research.google.com/audioset/download.html, with the audio the user fetched
    (YouTube; or the DCASE and PANNs downloads):

        ROOT/class_labels_indices.csv     index,mid,display_name (the 527 classes)
        ROOT/<split>_segments.csv         `#` comments, then YTID, start, end, "mid,mid"
        ROOT/audio/<split>/...            the split's audio, any depth (also
                                          audio/<split>_segments/, and audios/ for audio/)
        ROOT/audio/<file>                 audio of any split, flat

    Each segment list is a split named by its file less `_segments.csv` (balanced_train,
    eval, unbalanced_train). A segment's audio is the first file found (the split's folders
    first, then the flat ones) named, with any suffix of fat.core.audio_files.AUDIO_SUFFIXES,
    Y<YTID> (the DCASE/PANNs name), <YTID>, or either followed by _<start> or
    _<start>_<end>, the times as in the CSV (30.000), with three decimals, or in whole
    seconds (30); none: an issue naming what was looked for. Clip ids are Y<YTID>
    (Y--PJHxphWEs: a YTID may start with `-`, which a clip id may not), info
    {"ytid", "start", "end"}. The vocabulary is the display names in index order (some hold
    commas), the class ids the mids. Multi-label: the headline metric is mAP."""

    name = "audioset"
    description = "AudioSet (research.google.com/audioset): *_segments.csv, class table, audio/"
    headline = "map"

    def read(self, root: Path, splits: list[str] | None, options: DatasetOptions) -> DatasetListing:
        root = Path(root)
        if not root.is_dir():
            raise FatError(f"{root}: no such data directory (expected the AudioSet layout)")
        classes = require(root / CLASSES, "the class table (index,mid,display_name)", self.name)
        vocabulary, mids = read_class_table(classes)
        lists = {p.name[: -len(SEGMENTS)]: p for p in sorted(root.glob(f"*{SEGMENTS}"))}
        if not lists:
            raise FatError(
                f"{root}: no *{SEGMENTS}; the audioset layout has segment lists such as "
                f"balanced_train{SEGMENTS} there"
            )
        wanted = chosen_splits(splits, list(lists), self.name, root)
        bases = [root / name for name in AUDIO_FOLDERS if (root / name).is_dir()]
        if not bases:
            raise FatError(
                f"{root}: no audio/ folder; the audioset layout has the clips in "
                "audio/<split>/ or audio/ (named Y<YTID>.wav, <YTID>_<start>.wav, ...)"
            )
        name_of = dict(zip(mids, vocabulary, strict=True))
        index = {name: i for i, name in enumerate(vocabulary)}
        listing = {}
        for split_name in wanted:
            folders = [
                (base / sub, True)
                for base in bases
                for sub in (split_name, split_name + "_segments")
                if (base / sub).is_dir()
            ] + [(base, False) for base in bases]
            listing[split_name] = self._read_split(
                split_name, lists[split_name], folders, name_of, index, root
            )
        return DatasetListing(self.name, vocabulary, listing, class_ids=mids)

    @staticmethod
    def _read_split(
        split_name: str,
        path: Path,
        folders: list[tuple[Path, bool]],
        name_of: dict[str, str],
        index: dict[str, int],
        root: Path,
    ) -> SplitListing:
        split = SplitListing(split_name)
        where = str(path)
        table = read_table(path, "AudioSet segment list", width=4, comments=True)
        for line, cell, reason in table.malformed:
            split.issues.append(Issue(where, line, f"Y{cell}" if cell else "", reason))
        audio = audio_index(folders)
        shown = ", ".join(f"{folder.relative_to(root)}/" for folder, _ in folders)
        seen: set[str] = set()
        for line, (ytid, start_text, end_text, labels_cell) in table.rows:
            if ytid.lower() == "ytid":
                continue  # an uncommented header row
            clip_id = f"Y{ytid}"
            reason = check_clip_id(clip_id)
            try:
                start, end = float(start_text), float(end_text)
            except ValueError:
                start = end = 0.0
                reason = reason or f"start {start_text!r} or end {end_text!r} is not a number"
            if reason is None and not (0 <= start <= end < math.inf):
                reason = (
                    f"start {start_text} and end {end_text} are not times with 0 <= start <= end"
                )
            unknown = [mid for mid in split_cell(labels_cell) if mid not in name_of]
            if reason is None and unknown:
                reason = f"label {unknown[0]!r} is not in {CLASSES}"
            found = None
            if reason is None:
                stems = candidate_stems(ytid, start, end, (start_text, end_text))
                found = next((audio[stem] for stem in stems if stem in audio), None)
                if found is None:
                    looked = " ".join(stems)
                    reason = f"audio not found (looked for {looked} + an audio suffix in {shown})"
            if reason is not None or found is None:
                split.issues.append(Issue(where, line, clip_id, reason or "audio not found"))
                continue
            labels = tuple(name_of[mid] for mid in split_cell(labels_cell))
            info = {"ytid": ytid, "start": start, "end": end}
            checked_entry(
                split, ClipEntry(clip_id, found, labels, info), index, (where, line), seen
            )
        return split

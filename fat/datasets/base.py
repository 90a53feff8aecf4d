"""What every data set adapter gives: its clips per split in its own names, with their labels
in its own vocabulary and their facts, and the rows or files it could not take, each with the
reason. `fat featurize --dataset NAME` reads any adapter's listing into a store the same way."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from fat.core.audio_files import is_audio_file, not_a_file
from fat.core.errors import FatError
from fat.core.ids import check_clip_id


@dataclass(frozen=True)
class ClipEntry:
    """One clip of a data set: the id it is stored under, its audio file, its labels (names
    in the data set's vocabulary; empty for an unlabelled split) and its facts (fold, source
    recording: a small JSON-able dict, at most 128 bytes as JSON)."""

    clip_id: str
    path: Path
    labels: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Issue:
    """A row or file the adapter did not take: where (file, line when it is a table row),
    which clip, and why; written to the split's errors CSV."""

    file: str
    line: int | None
    clip_id: str
    reason: str


@dataclass
class SplitListing:
    name: str  # the data set's own split name: the split's name in the store
    clips: list[ClipEntry] = field(default_factory=list)
    labelled: bool = True
    issues: list[Issue] = field(default_factory=list)


@dataclass
class DatasetListing:
    """A data set as its adapter read it: vocabulary in the data set's own order, and the
    splits asked for."""

    dataset: str
    vocabulary: tuple[str, ...]
    splits: dict[str, SplitListing]
    single_label: bool = False  # every clip has exactly one label
    class_ids: tuple[str, ...] = ()  # the data set's own id of each class (AudioSet mids)
    notes: list[str] = field(default_factory=list)  # said once, e.g. a split left out


@dataclass(frozen=True)
class DatasetOptions:
    """What some layouts need besides their root folder (each adapter says which it reads)."""

    manifest: Path | None = None  # csv: the table of clips
    vocabulary: Path | None = None  # csv: a file of class names, one per line, in order
    labels: Path | None = None  # fat2019: an answer key for the test split


class Dataset(ABC):
    """An adapter: one published layout read into a `DatasetListing`. Register it with
    `register_dataset` (fat/datasets/__init__.py)."""

    name: ClassVar[str]
    description: ClassVar[str]  # one line: the layout and where it is downloaded
    splits: ClassVar[tuple[str, ...]] = ()  # the split names it always has (empty: from data)
    headline: ClassVar[str] = "lwlrap"  # the metric its field reports first

    @abstractmethod
    def read(self, root: Path, splits: list[str] | None, options: DatasetOptions) -> DatasetListing:
        """The listing of `splits` (None: every split) of the data set under `root`;
        FatError in one line naming the file and what was expected when `root` is not this
        layout. Rows and files that cannot be taken go to each split's `issues`."""


def checked_entry(
    split: SplitListing,
    clip: ClipEntry,
    vocabulary: dict[str, int],
    where: tuple[str, int | None],
    seen: set[str],
) -> None:
    """Add `clip` to `split`, or an issue saying why not: an id that is not a valid clip id
    or is listed twice, a label outside the vocabulary, no label in a labelled split, an
    audio file that is not there. `where` is the (file, line) the clip was listed at."""
    file, line = where
    reason = check_clip_id(clip.clip_id)
    if reason is None and clip.clip_id in seen:
        reason = f"clip id {clip.clip_id!r} listed twice"
    if reason is None:
        unknown = [name for name in clip.labels if name not in vocabulary]
        if unknown:
            reason = f"label {unknown[0]!r} is not in the vocabulary"
        elif split.labelled and not clip.labels:
            reason = "no label"
        elif (why := not_a_file(clip.path)) is not None:
            reason = f"audio file {clip.path}: {why}"
    if reason is not None:
        split.issues.append(Issue(file, line, clip.clip_id, reason))
        return
    seen.add(clip.clip_id)
    split.clips.append(clip)


def unlisted_audio(folder: Path, listed: set[Path], split: SplitListing) -> None:
    """An issue for every audio file under `folder` that no row listed (present but not
    listed: a wrong or truncated table, or a file that does not belong)."""
    for path in sorted(folder.rglob("*")):
        if is_audio_file(path) and path not in listed:
            split.issues.append(Issue(str(path), None, path.name, "audio file not listed"))


def require(path: Path, what: str, dataset: str) -> Path:
    """`path`, or FatError naming it and what the layout expects there."""
    if not path.exists():
        raise FatError(f"{path}: missing; the {dataset} layout has {what} there")
    return path

"""A folder per class (ImageFolder style): the simplest layout of one's own labelled audio."""

from pathlib import Path

from fat.core.audio_files import audio_files_under, is_audio_file
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
)
from fat.datasets.manifest import clip_ids_for
from fat.datasets.tables import chosen_splits


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


class Folders(Dataset):
    """Audio sorted into one folder per class, as torchvision's ImageFolder reads images
    (a layout of one's own; nothing to download):

        ROOT/<class>/<any subfolders>/<file>.wav|.flac|.mp3|...

    Each top-level folder is a class (the vocabulary is their sorted names); every audio file
    under it (fat.core.audio_files.AUDIO_SUFFIXES, MP3 included) is a clip of the one split,
    train, with that one label. Other files, and anything hidden (a name starting with `.`),
    are ignored; an audio file directly in ROOT, outside every class folder, is an issue. A
    class folder without audio is an issue too (file: the folder; no clip id) and stays in the
    vocabulary, so the model still has its output. Clip ids: the file's name where that is a
    valid id no other file shares, else the path below ROOT with separators as `__` and other
    characters as `_` (dog/a/x.wav, cat/x.wav -> dog__a__x.wav, cat__x.wav); see
    fat.datasets.manifest.clip_ids_for. Single-label: the headline metric is accuracy."""

    name = "folders"
    description = "a folder per class: ROOT/<class>/**/<audio file> (your own data)"
    splits = ("train",)
    headline = "accuracy"

    def read(self, root: Path, splits: list[str] | None, options: DatasetOptions) -> DatasetListing:
        root = Path(root)
        if not root.is_dir():
            raise FatError(f"{root}: no such data directory (expected a folder per class)")
        wanted = chosen_splits(splits, self.splits, self.name, root)
        classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            raise FatError(
                f"{root}: no class folders; the folders layout has ROOT/<class>/.../<audio file>"
            )
        for folder in classes:
            reason = check_class_name(folder.name)
            if reason is not None:
                raise FatError(f"{folder}: the folder's name cannot be a class name ({reason})")
        vocabulary = tuple(folder.name for folder in classes)
        split = SplitListing("train")
        for path in sorted(root.iterdir()):
            if is_audio_file(path) and not path.name.startswith("."):
                split.issues.append(Issue(str(path), None, path.name, "not in a class folder"))
        files: list[tuple[Path, str]] = []
        for folder in classes:
            found = [p for p in audio_files_under(folder) if not _hidden(p, root)]
            if not found:
                reason = "class folder has no audio files (the class keeps its place)"
                split.issues.append(Issue(str(folder), None, "", reason))
            files += [(path, folder.name) for path in found]
        ids = clip_ids_for([path for path, _ in files], root)
        index = {name: i for i, name in enumerate(vocabulary)}
        seen: set[str] = set()
        for path, label in files:
            clip = ClipEntry(ids[path], path, (label,))
            checked_entry(split, clip, index, (str(path), None), seen)
        listing = {name: split for name in wanted}
        return DatasetListing(self.name, vocabulary, listing, single_label=True)

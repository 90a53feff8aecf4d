"""What counts as an audio file, in one place: the formats the decoder (libsndfile, through
soundfile) reads, by suffix. Featurize, `fat tag`, `fat embed` and every data set list files
with it."""

from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64")


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES and path.is_file()


def audio_files_under(folder: Path) -> list[Path]:
    """Every audio file under `folder`, sorted (subfolders included)."""
    return sorted(p for p in Path(folder).rglob("*") if is_audio_file(p))


def suffix_list() -> str:
    """The suffixes as people read them in a message: ".wav, .flac, ..."."""
    return ", ".join(AUDIO_SUFFIXES)

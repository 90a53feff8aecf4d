"""What counts as an audio file, in one place: the formats the decoder (libsndfile, through
soundfile) reads, by suffix. Featurize, `fat tag`, `fat embed` and every data set list files
with it."""

import errno
import stat
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


def not_a_file(path: Path) -> str | None:
    """Why `path` is not a regular file that can be read as audio, in words (None when it
    is one): not found, a directory, a named pipe, a device, a symbolic-link loop, ..."""
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        return "file not found" if not Path(path).is_symlink() else "a broken symbolic link"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic-link loop"
        return f"cannot access: {e.strerror}"
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"{kind}, not an audio file"

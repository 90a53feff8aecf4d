"""The small text files a user hands over (label CSVs, settings files, clip lists): read as
UTF-8 with or without a byte-order mark, with one-line errors that name the file."""

from pathlib import Path

from fat.core.errors import FatError


def read_text(path: Path, what: str) -> str:
    """The text of `path`; FatError naming it and `what` it should have been otherwise."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise FatError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise FatError(f"{path}: not a UTF-8 text file ({e.reason})") from None

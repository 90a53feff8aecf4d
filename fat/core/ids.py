"""Clip ids (the WAV file name), validated so that no id can address anything outside a store,
and clip-id list files."""

import re
import zlib
from pathlib import Path

from fat.core.errors import FatError
from fat.core.files import atomic_write
from fat.core.textfiles import read_text

# Letters, digits and a few punctuation marks real FSDKaggle2019 names never leave;
# no separators, no leading dot (so neither "." nor ".." nor hidden files), bounded length.
_CLIP_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-()+]{0,127}")


def check_clip_id(clip_id: str) -> str | None:
    """Return why `clip_id` is not a valid clip id, or None when it is."""
    if not isinstance(clip_id, str) or not clip_id:
        return "empty clip id"
    if "/" in clip_id or "\\" in clip_id or "\x00" in clip_id:
        return f"clip id {clip_id!r} contains a path separator"
    if ".." in clip_id:
        return f"clip id {clip_id!r} contains '..'"
    if not _CLIP_ID.fullmatch(clip_id):
        return f"clip id {clip_id!r} has characters outside [A-Za-z0-9_.-()+] or is too long"
    return None


def validate_clip_id(clip_id: str) -> str:
    """Return `clip_id` unchanged, or raise FatError saying why it is not allowed."""
    reason = check_clip_id(clip_id)
    if reason is not None:
        raise FatError(reason)
    return clip_id


def read_clip_list(path: Path) -> list[str]:
    """One clip id per line (blank lines and `#` comments ignored); bad ids name their line."""
    lines = read_text(path, "clip list").splitlines()
    ids = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            reason = check_clip_id(line)
            if reason:
                raise FatError(f"{path}:{n}: {reason}")
            ids.append(line)
    return ids


def write_clip_list(path: Path, clip_ids: list[str], comment: str) -> None:
    """The file `read_clip_list` reads: a `# comment` line, then one id per line."""
    with atomic_write(Path(path)) as f:
        f.write(f"# {comment}\n" + "".join(f"{c}\n" for c in clip_ids))


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (0 <= I < N) -> (I, N); FatError naming what is wrong otherwise."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise FatError(f"shard must be I/N with 0 <= I < N, e.g. 0/4; got {text!r}")
    return i, n


def shard_of(clip_id: str, shards: int) -> int:
    """Which of `shards` a clip belongs to: CRC-32 of its id, so every host, run and Python
    agrees without coordination (unlike `hash`, which is salted per process)."""
    return zlib.crc32(clip_id.encode("utf-8")) % shards

"""The layout of one split: its arrays, its metadata record, clip-id encoding, checksums.

The same arrays in Zarr and HDF5 (reasoning in docs/store.md):

    frames     (total_frames, n_mels)  float16/32   all clips concatenated along time
    offsets    (n_clips,) int64        first frame of each clip in `frames`
    lengths    (n_clips,) int32        frames per clip
    ids        (n_clips, 128) uint8    clip id, ASCII, NUL-padded
    labels     (n_clips, n_classes) uint8   multi-hot targets (all zero when unlabelled)
    source     (n_clips, 3) float64    original sample rate, channels, duration in seconds
    info       (n_clips, 128) uint8    the data set's facts about the clip (fold, source id),
                                       a JSON object in UTF-8, NUL-padded (splits whose
                                       metadata says info_bytes 0, made before, have none)
    checksums  (n_clips,) uint32       CRC-32 of the clip's stored frames
    mel_stats  (2, n_mels) float64     per-mel mean and std over the split
    stats_for  (1,) int64              how many clips `mel_stats` covers
    commit     (4,) int64              [n_clips, n_frames] committed: the only thing readers
                                       trust; then the commit before it (format 1: 2 values)

A commit writes frames and index rows past the committed end and makes them durable, then
moves `commit` (the previous mark first). Rows beyond `commit` are invisible and get
overwritten by the next writer, so a writer killed at any point leaves exactly the clips of
the last commit; a writer that opens a split re-verifies the clips of its last commit, in case
the storage lost data it had acknowledged (a full disk under HDF5).

Split metadata carries a generation id, new for every split created: a reader whose split was
replaced under it (`--overwrite`) sees a new generation and stops instead of reading frames of
one split through the index of another.
"""

import json
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.ids import validate_clip_id

ID_BYTES = 128
INFO_BYTES = 128  # a clip's facts as compact JSON: {"fold": 3, "source": "100032"} and the like
COMPRESSIONS = ("none", "zstd")
COMMIT_ARRAY = "commit"
# In a store that `fat store copy` is still filling; such a store is not opened.
UNFINISHED_COPY = "copy-unfinished.json"
# Rows per chunk of the index arrays: every commit rewrites the open chunk of each, and
# opening a split reads all of them anyway (BENCHMARKS.md has the trade-off).
INDEX_CHUNK = 1024
# What a store's metadata may claim: a store is input anyone can write, and these numbers size
# what a reader allocates (AudioSet has 527 classes; 128 mels is the default).
MAX_CLASSES = 100_000
MAX_MELS = 4096
MAX_INFO_BYTES = 4096
MAX_FRAMES_CHUNK = 1 << 20
# One chunk decoded at a time is allocated whole (a zstd chunk decompresses to its full size):
# fat's largest is 1,024 rows of a 100,000-class labels array, ~98 MiB.
MAX_CHUNK_BYTES = 128 << 20
MAX_METADATA_BYTES = 64 << 20  # a zarr.json; 100,000 class names and ids take a few MB


@dataclass(frozen=True)
class ArraySpec:
    """An array of a split: rows are appended along axis 0, each row of shape `row_shape`."""

    dtype: str
    row_shape: tuple[int, ...] = ()
    chunk_rows: int = 4096
    compression: str = "none"


def default_frames_chunk(format: str, compression: str) -> int:
    """Frames per chunk of the frames array: uncompressed Zarr writes fewer, larger chunk
    files; zstd and HDF5 keep small chunks because a crop read decompresses or caches a whole
    one (measured trade-off in BENCHMARKS.md)."""
    return 4096 if (format, compression) == ("zarr", "none") else 1024


@dataclass(frozen=True)
class SplitMeta:
    """What a split was made with; written once when the split is created."""

    name: str
    feature_config: LogMelConfig
    vocabulary: tuple[str, ...]
    labelled: bool
    tool_version: str
    created_utc: str
    frames_chunk: int
    compression: str
    generation: str = field(default_factory=lambda: uuid.uuid4().hex)
    dataset: str = "fat2019"  # the data set's layout it was read in (`fat featurize --dataset`)
    single_label: bool = False  # every clip has exactly one label (the data set says so)
    class_ids: tuple[str, ...] = ()  # the data set's own id of each class (AudioSet mids)
    info_bytes: int = INFO_BYTES  # 0: a split made before clips carried info

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "feature_config": self.feature_config.to_dict(),
            "vocabulary": list(self.vocabulary),
            "labelled": self.labelled,
            "tool_version": self.tool_version,
            "created_utc": self.created_utc,
            "frames_chunk": self.frames_chunk,
            "compression": self.compression,
            "generation": self.generation,
            "dataset": self.dataset,
            "single_label": self.single_label,
            "class_ids": list(self.class_ids),
            "info_bytes": self.info_bytes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SplitMeta":
        """The record as saved; FatError naming what is missing or malformed."""
        try:
            for key in ("vocabulary", "class_ids"):
                if not isinstance(d.get(key, []), list):
                    raise TypeError(f"{key} is not a list")
            meta = cls(
                name=d["name"],
                feature_config=LogMelConfig.from_dict(d["feature_config"]),
                vocabulary=tuple(d["vocabulary"]),
                labelled=bool(d["labelled"]),
                tool_version=d["tool_version"],
                created_utc=d["created_utc"],
                frames_chunk=int(d["frames_chunk"]),
                compression=d["compression"],
                # Format 1 had no generation: its creation time tells its splits apart.
                generation=str(d.get("generation") or d["created_utc"]),
                # Splits made before data sets had names were FSDKaggle2019's, without info.
                dataset=str(d.get("dataset", "fat2019")),
                single_label=bool(d.get("single_label", False)),
                class_ids=tuple(d.get("class_ids", ())),
                info_bytes=int(d.get("info_bytes", 0)),
            )
        except KeyError as e:
            raise FatError(f"metadata record lacks {e}") from None
        except (TypeError, ValueError, AttributeError, OverflowError) as e:
            raise FatError(f"metadata record malformed ({e})") from None
        meta._check_claims()
        return meta

    def _check_claims(self) -> None:
        """FatError naming a claim that is out of bounds: these numbers size the arrays a
        reader allocates, and a store may come from anyone."""
        if not all(isinstance(v, str) for v in self.vocabulary):
            raise FatError("metadata record malformed (vocabulary is not a list of names)")
        bounds = {
            "vocabulary size": (len(self.vocabulary), 0, MAX_CLASSES),
            "class_ids count": (len(self.class_ids), 0, MAX_CLASSES),
            "n_mels": (self.feature_config.n_mels, 1, MAX_MELS),
            "frames_chunk": (self.frames_chunk, 1, MAX_FRAMES_CHUNK),
            "info_bytes": (self.info_bytes, 0, MAX_INFO_BYTES),
        }
        for what, (value, low, high) in bounds.items():
            if not low <= value <= high:
                raise FatError(
                    f"metadata record claims {what} {value:,}, outside {low}..{high:,}; "
                    "damaged, or not made by fat"
                )

    def array_specs(self) -> dict[str, ArraySpec]:
        """Every array of the split, the commit mark last (created last, so a split whose
        creation was interrupted is recognisably incomplete)."""
        cfg = self.feature_config
        return {
            "frames": ArraySpec(cfg.dtype, (cfg.n_mels,), self.frames_chunk, self.compression),
            "offsets": ArraySpec("int64", (), INDEX_CHUNK),
            "lengths": ArraySpec("int32", (), INDEX_CHUNK),
            "ids": ArraySpec("uint8", (ID_BYTES,), INDEX_CHUNK),
            "labels": ArraySpec("uint8", (len(self.vocabulary),), INDEX_CHUNK),
            "source": ArraySpec("float64", (3,), INDEX_CHUNK),
            **(
                {"info": ArraySpec("uint8", (self.info_bytes,), INDEX_CHUNK)}
                if self.info_bytes
                else {}
            ),
            "checksums": ArraySpec("uint32", (), INDEX_CHUNK),
            "mel_stats": ArraySpec("float64", (cfg.n_mels,), 2),
            "stats_for": ArraySpec("int64", (), 1),
            COMMIT_ARRAY: ArraySpec("int64", (), 4),
        }


# A split being built by an overwrite, and one being replaced: "~" cannot be in a split name.
NEW_SUFFIX, OLD_SUFFIX = "~new", "~old"


def encode_ids(clip_ids: list[str]) -> np.ndarray:
    out = np.zeros((len(clip_ids), ID_BYTES), dtype=np.uint8)
    for i, clip_id in enumerate(clip_ids):
        raw = validate_clip_id(clip_id).encode("ascii")
        out[i, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


def decode_ids(raw: np.ndarray) -> list[str]:
    return [bytes(row).rstrip(b"\0").decode("ascii", errors="replace") for row in raw]


def encode_info(infos: list[dict[str, Any]], width: int = INFO_BYTES) -> np.ndarray:
    """Each clip's facts as compact JSON in a NUL-padded row; FatError naming a clip whose
    facts do not fit."""
    out = np.zeros((len(infos), width), dtype=np.uint8)
    for i, info in enumerate(infos):
        raw = json.dumps(info, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(raw) > width or not isinstance(info, dict):
            raise FatError(f"clip facts {info!r}: not a JSON object of at most {width} bytes")
        out[i, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


def decode_info(row: np.ndarray) -> dict[str, Any]:
    """One row of the info array as a dict ({} for an empty or damaged row)."""
    raw = bytes(row).rstrip(b"\0")
    if not raw:
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def checksum(frames: np.ndarray) -> int:
    """CRC-32 of a clip's frames as stored: (n_frames, n_mels), C order, store dtype."""
    return zlib.crc32(np.ascontiguousarray(frames))


def mel_stats_from_sums(sums: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-mel (mean, std) from the (2, n_mels) sum and sum of squares of `count` frames."""
    count = max(count, 1)
    mean = sums[0] / count
    return mean, np.sqrt(np.maximum(sums[1] / count - mean**2, 0.0))

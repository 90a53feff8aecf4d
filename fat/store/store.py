"""`FeatureStore`: a store on disk, its splits, its single writer; `open_store` opens one."""

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from fat import __version__
from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.ids import validate_clip_id
from fat.store.backends import BACKENDS, format_for
from fat.store.layout import COMPRESSIONS, SplitMeta, default_frames_chunk
from fat.store.lock import WriterLock
from fat.store.reader import Split
from fat.store.verify import verify_split
from fat.store.writer import SplitWriter


class FeatureStore:
    """A store on disk. `mode="r"` reads (also while a writer appends; call `refresh()` to see
    new commits); `mode="a"` creates or appends and holds the store's single-writer lock."""

    def __init__(self, path: Path | str, mode: str = "r", format: str | None = None):
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        self.path = Path(path)
        self.format = format_for(self.path, format)
        self.mode = mode
        self._lock: WriterLock | None = None
        backend_class = BACKENDS[self.format]
        if mode == "a":
            lock_path = backend_class.lock_path_for(self.path)
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = WriterLock(lock_path, self.path)
            self._lock.acquire()
            try:
                self.backend = backend_class(self.path, writable=True)
            except BaseException:
                self._lock.release()
                raise
        else:
            self.backend = backend_class(self.path, writable=False)
        self._splits: dict[str, Split] = {}

    def splits(self) -> list[str]:
        return self.backend.split_names()

    def __contains__(self, split: str) -> bool:
        return split in self.splits()

    def split(self, name: str) -> Split:
        if name not in self._splits:
            if name not in self.splits():
                have = ", ".join(self.splits()) or "none"
                raise FatError(f"{self.path}: no split {name!r} (splits: {have})")
            reopen = partial(_open_split, str(self.path), self.format, name)
            self._splits[name] = Split.open(self.backend, name, reopen)
        return self._splits[name]

    def refresh(self) -> None:
        """Forget cached views so the next `split()` sees the latest commit."""
        self.backend.refresh()
        self._splits.clear()

    def writer(
        self,
        split: str,
        feature_config: LogMelConfig,
        vocabulary: tuple[str, ...],
        labelled: bool = True,
        overwrite: bool = False,
        frames_chunk: int | None = None,
        compression: str = "none",
        commit_every: int = 64,
        on_create: Callable[[SplitMeta], None] | None = None,
    ) -> SplitWriter:
        """A writer for `split`: creates it, resumes it, or (`overwrite`) recreates it.

        Resuming a split made with other feature settings or vocabulary is refused."""
        if self.mode != "a":
            raise FatError(f"{self.path}: opened read-only; open with mode='a' to write")
        validate_clip_id(split)  # split names become group/file names: same rules as ids
        self._splits.pop(split, None)
        if split in self.splits() and not overwrite:
            meta = SplitMeta.from_dict(self.backend.meta(split))
            diffs = meta.feature_config.differences(feature_config)
            if diffs:
                raise FatError(
                    f"{self.path}: split {split!r} was made with other feature settings "
                    f"({'; '.join(diffs)}); use the same settings, another store, or --overwrite"
                )
            if meta.vocabulary != tuple(vocabulary):
                raise FatError(
                    f"{self.path}: split {split!r} has another label vocabulary "
                    f"({len(meta.vocabulary)} classes vs {len(vocabulary)}); use --overwrite"
                )
            if meta.labelled != labelled:
                made = "with" if meta.labelled else "without"
                raise FatError(
                    f"{self.path}: split {split!r} was made {made} labels; "
                    "use --overwrite to change that"
                )
        else:
            if compression not in COMPRESSIONS:
                raise FatError(f"unknown compression {compression!r} (none or zstd)")
            if self.format == "hdf5" and compression != "none":
                raise FatError("HDF5 stores are uncompressed; use a .zarr store for zstd")
            meta = SplitMeta(
                name=split,
                feature_config=feature_config,
                vocabulary=tuple(vocabulary),
                labelled=labelled,
                tool_version=__version__,
                created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
                frames_chunk=frames_chunk or default_frames_chunk(self.format, compression),
                compression=compression,
            )
            self.backend.delete_split(split)
            self.backend.create_split(split, meta.to_dict(), meta.array_specs())
            if on_create:
                on_create(meta)
        return SplitWriter(self.backend, meta, commit_every=commit_every)

    def delete_split(self, split: str) -> None:
        if self.mode != "a":
            raise FatError(f"{self.path}: opened read-only")
        self._splits.pop(split, None)
        self.backend.delete_split(split)

    def verify(
        self, check_data: bool = True, progress: Callable[[int], None] | None = None
    ) -> tuple[list[str], list[str]]:
        problems: list[str] = []
        notes: list[str] = []
        for name in self.splits():
            try:
                p, n = verify_split(self.split(name), check_data=check_data, progress=progress)
            except FatError:
                raise
            except Exception as e:  # unreadable arrays are exactly what verify must report
                p, n = [f"split {name}: unreadable ({type(e).__name__}: {e})"], []
            problems += p
            notes += n
        return problems, notes

    def disk_usage(self) -> int:
        return self.backend.disk_usage()

    def close(self) -> None:
        self.backend.close()
        if self._lock:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *_) -> None:
        self.close()


def open_store(path: Path | str, mode: str = "r", format: str | None = None) -> FeatureStore:
    """Open (mode "a": create) a feature store; the format follows the suffix unless given."""
    return FeatureStore(path, mode=mode, format=format)


def _open_split(path: str, format: str, name: str) -> Split:
    """A split reopened read-only by path, in whichever process asks (see `Split.__reduce__`)."""
    return FeatureStore(path, "r", format).split(name)

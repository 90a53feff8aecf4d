"""`FeatureStore`: a store on disk, its splits, its single writer; `open_store` opens one.

An overwrite never destroys the split it replaces before the new one is whole: the new split
is built as `<name>~new` (resumable like any split), then swapped in by renames, the old one
kept as `<name>~old` until the new one has its name. A store opened for writing finishes a
swap that was interrupted, so at every instant either the old or the new split is complete;
so does a reader where it may write the store (taking the writer's lock to do it), and
elsewhere it names the state and what finishes it. `repair_store` does all a writer would.
"""

import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from fat import __version__
from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.ids import check_clip_id, validate_clip_id
from fat.core.lock import ExclusiveLock
from fat.store.backends import BACKENDS, SUFFIXES, Backend, InterruptedWriter, format_for
from fat.store.layout import (
    COMPRESSIONS,
    NEW_SUFFIX,
    OLD_SUFFIX,
    SplitMeta,
    default_frames_chunk,
)
from fat.store.reader import Split
from fat.store.remote import ChunkCacheSpec, RemoteZarrBackend, is_url
from fat.store.verify import verify_split
from fat.store.writer import SplitWriter


class SplitUnreadable(FatError):
    """A split whose metadata or index cannot be read; `reason` says why."""

    def __init__(self, path: Path, split: str, reason: str):
        super().__init__(f"{path}: split {split!r} unreadable: {reason}")
        self.reason = reason


class FeatureStore:
    """A store on disk. `mode="r"` reads (also while a writer appends; call `refresh()` to see
    new commits); `mode="a"` creates or appends and holds the store's single-writer lock, taken
    on the resolved path, so two paths to one store (a symlink) share one lock."""

    def __init__(
        self,
        path: Path | str,
        mode: str = "r",
        format: str | None = None,
        chunk_cache: ChunkCacheSpec | None = None,
    ):
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        self.path: Path | str = path if is_url(path) else Path(path)
        self.format = store_format(self.path, format, mode)
        self.mode = mode
        self.chunk_cache = chunk_cache
        self._lock: ExclusiveLock | None = None
        # What opening finished that a killed writer had left undone, one line each.
        self.recovered: list[str] = []
        backend_class = BACKENDS[self.format]
        if is_url(self.path):
            if self.format != "zarr":
                raise FatError(
                    f"{path}: HDF5 stores on object storage are not supported (HDF5 reads "
                    "many small pieces of one file); copy it to local disk, or use a Zarr store"
                )
            self.backend = RemoteZarrBackend(str(self.path), mode == "a", chunk_cache)
        elif mode == "r":
            self.backend = self._open_for_reading(backend_class)
        else:
            backend_class.probe(self.path)  # a foreign file or folder: refused, untouched
            lock_path = backend_class.lock_path_for(self.path.resolve())
            if lock_path.is_symlink():  # the lock is opened for writing: it must be our own
                raise FatError(
                    f"{path}: its lock file {lock_path.name!r} is a symbolic link (to "
                    f"{str(lock_path.readlink())!r}); remove it, fat makes its own"
                )
            made_folder = not lock_path.parent.exists()
            made_lock = not lock_path.exists()
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = ExclusiveLock(lock_path, self.path, "writing this store")
            try:
                self._lock.acquire()
                self.backend = backend_class(self.path, writable=True)
                self.recovered += self.backend.recovered + self._finish_swaps()
            except BaseException:
                if made_lock:  # leave nothing behind where no store could be opened
                    lock_path.unlink(missing_ok=True)
                    if made_folder and not any(lock_path.parent.iterdir()):
                        lock_path.parent.rmdir()
                self._lock.release()
                raise
        if self.backend.unfinished_copy():
            self.close()
            raise FatError(
                f"{path}: `fat store copy` into it has not finished; run that copy again to "
                "finish it (a half-copied store is never read)"
            )
        self._splits: dict[str, Split] = {}

    def _open_for_reading(self, backend_class: type[Backend]) -> Backend:
        """A read-only backend. What a killed writer left for the next writer to finish (an
        HDF5 file still marked open for writing, an overwrite's swap between its renames) is
        finished first where this process may write the store, under the writer's lock, as the
        next writer would; elsewhere the state is reported (`_half_swapped`, InterruptedWriter)."""
        try:
            backend = backend_class(self.path, writable=False)
        except InterruptedWriter:
            if not self._finish_as_writer():
                raise
            return backend_class(self.path, writable=False)
        try:
            pending = any(g.endswith(OLD_SUFFIX) for g in backend.group_names())
        except Exception:  # noqa: BLE001 - a damaged store: `_groups` reports it when asked
            pending = False
        if pending:
            backend.close()  # HDF5 lets one process open a file one way at a time
            self._finish_as_writer()
            backend = backend_class(self.path, writable=False)
        return backend

    def _finish_as_writer(self) -> bool:
        """Open the store for writing once, which finishes what a killed writer left; False
        where this process may not (read-only files, another writer at work)."""
        where = self.path.resolve()
        if not os.access(where, os.W_OK) or not os.access(where.parent, os.W_OK):
            return False
        try:
            FeatureStore(self.path, "a", self.format).close()
        except FatError:
            return False
        return True

    def splits(self) -> list[str]:
        """The complete splits, and those a killed overwrite left half-swapped (reading one
        says what finishes it); temporary ones of an overwrite and names that are not valid
        split names (a damaged or crafted store) are left out."""
        names = [n for n in self._groups() if check_clip_id(n) is None]
        return sorted(names + list(self._half_swapped()))

    def _half_swapped(self) -> dict[str, str]:
        """{split: why it cannot be read} for splits whose overwrite's swap stopped between
        its renames (a writer killed there, or one between them right now)."""
        groups = set(self._groups())
        states = {}
        for old in sorted(g for g in groups if g.endswith(OLD_SUFFIX)):
            split = old.removesuffix(OLD_SUFFIX)
            if split in groups or check_clip_id(split) is not None:
                continue
            if split + NEW_SUFFIX in groups:
                there = (
                    f"its old copy was renamed to {old!r} and its replacement, whole, is still "
                    f"{split + NEW_SUFFIX!r}"
                )
            else:
                there = f"only its old copy {old!r} is here"
            states[split] = (
                f"half-swapped: an --overwrite stopped between two renames (its writer was "
                f"killed, or is renaming right now): {there}; opening the store for writing "
                f"finishes it (run the writer again, or `fat store repair {self.path}`)"
            )
        return states

    def _groups(self) -> list[str]:
        try:
            return self.backend.group_names()
        except Exception as e:  # noqa: BLE001 - a damaged store fails in format-specific ways
            raise FatError(f"{self.path}: cannot list the splits, damaged? ({e})") from None

    def __contains__(self, split: str) -> bool:
        return split in self.splits()

    def split(self, name: str) -> Split:
        """A read view of `name` at its last commit; FatError naming the split and the reason
        when it cannot be read."""
        if name not in self._splits:
            if name not in self.splits():
                have = ", ".join(self.splits()) or "none"
                raise FatError(f"{self.path}: no split {name!r} (splits: {have})")
            half_swapped = self._half_swapped()
            if name in half_swapped:
                raise SplitUnreadable(self.path, name, half_swapped[name])
            reopen = partial(_open_split, str(self.path), self.format, name, self.chunk_cache)
            try:
                split = Split.open(self.backend, name, reopen)
            except FatError as e:
                raise SplitUnreadable(self.path, name, str(e)) from None
            except Exception as e:  # noqa: BLE001 - damaged arrays fail in format-specific ways
                reason = f"{type(e).__name__}: {' '.join(str(e).split())}"
                raise SplitUnreadable(self.path, name, reason) from None
            self._splits[name] = split
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
        dataset: str = "fat2019",
        single_label: bool = False,
        class_ids: tuple[str, ...] = (),
    ) -> SplitWriter:
        """A writer for `split`: creates it, resumes it, or (`overwrite`) builds its
        replacement, which takes the split's place when the writer closes without an error.
        An interrupted overwrite leaves the old split as it was; overwriting again continues
        the replacement where it stopped, when it was made with the same settings.
        `dataset`, `single_label`, `class_ids`: what the data set says of its splits.

        Resuming a split made with other feature settings or vocabulary is refused, and so is
        a split of another data set, or with other feature settings, than the store's others."""
        if self.mode != "a":
            raise FatError(f"{self.path}: opened read-only; open with mode='a' to write")
        validate_clip_id(split)  # split names become group/file names: same rules as ids
        self._splits.pop(split, None)
        group = split + NEW_SUFFIX if overwrite else split
        wanted = (feature_config, tuple(vocabulary), labelled)
        self._check_fits_the_others(split, dataset, feature_config)
        existing = self._meta_of(group)
        if existing is not None and existing.dataset != dataset:
            raise FatError(
                f"{self.path} holds {existing.dataset} splits ({split!r}); a store holds one "
                f"data set, so {dataset}'s split {split!r} goes into another store"
            )
        if existing is not None and not overwrite:
            self._check_resumable(split, existing, *wanted)
            meta = existing
        elif existing is not None and self._matches(existing, *wanted, compression):
            meta = existing  # an interrupted overwrite with the same settings: continue it
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
                dataset=dataset,
                single_label=single_label,
                class_ids=tuple(class_ids),
            )
            self.backend.delete_split(group)
            self.backend.create_split(group, meta.to_dict(), meta.array_specs())
        swap = partial(self._swap_in, split) if overwrite else None
        return SplitWriter(self.backend, meta, group, commit_every=commit_every, on_complete=swap)

    def _check_fits_the_others(self, split: str, dataset: str, features: LogMelConfig) -> None:
        """One data set per store, every split with the same feature settings: a model trained
        on one split is applied to the others, and mixed settings surface only then."""
        for other in self.splits():
            meta = self._meta_of(other)
            if other == split or meta is None:
                continue
            if meta.dataset != dataset:
                raise FatError(
                    f"{self.path} holds {meta.dataset} splits ({other!r}); a store holds one "
                    f"data set, so {dataset}'s split {split!r} goes into another store"
                )
            diffs = meta.feature_config.differences(features)
            if diffs:
                raise FatError(
                    f"{self.path}: split {other!r} was made with other feature settings "
                    f"({'; '.join(diffs)}); every split of a store shares them: use the same "
                    "settings or another store"
                )

    def _mixed_splits(self) -> list[str]:
        """Splits of one store that do not go together: other data sets, other features
        (made before the writer refused them, or by hand)."""
        metas = {n: m for n in self.splits() if (m := self._meta_of(n)) is not None}
        if not metas:
            return []
        first, meta = next(iter(metas.items()))
        problems = []
        for name, other in list(metas.items())[1:]:
            if other.dataset != meta.dataset:
                problems.append(
                    f"split {name}: data set {other.dataset}, while split {first} is "
                    f"{meta.dataset}'s; a store holds one data set"
                )
            diffs = meta.feature_config.differences(other.feature_config)
            if diffs:
                problems.append(
                    f"split {name}: feature settings differ from split {first}'s "
                    f"({'; '.join(diffs)}); a model trained on one cannot read the other"
                )
        return problems

    def _meta_of(self, group: str) -> SplitMeta | None:
        if group not in self.backend.group_names():
            return None
        try:
            return SplitMeta.from_dict(self.backend.meta(group))
        except FatError:
            return None  # unreadable metadata: the caller recreates the group

    def _check_resumable(self, split, meta: SplitMeta, features, vocabulary, labelled) -> None:
        diffs = meta.feature_config.differences(features)
        if diffs:
            raise FatError(
                f"{self.path}: split {split!r} was made with other feature settings "
                f"({'; '.join(diffs)}); use the same settings, another store, or --overwrite"
            )
        if meta.vocabulary != vocabulary:
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

    @staticmethod
    def _matches(meta: SplitMeta, features, vocabulary, labelled, compression) -> bool:
        return (meta.feature_config, meta.vocabulary, meta.labelled, meta.compression) == (
            features,
            vocabulary,
            labelled,
            compression,
        )

    def _swap_in(self, split: str) -> None:
        """`<split>~new` becomes `split`; the old split is kept as `<split>~old` until then."""
        groups = self.backend.group_names()
        if split in groups:
            self.backend.delete_split(split + OLD_SUFFIX)
            self.backend.rename_split(split, split + OLD_SUFFIX)
        self.backend.rename_split(split + NEW_SUFFIX, split)
        self.backend.delete_split(split + OLD_SUFFIX)
        self.backend.compact()
        self._splits.pop(split, None)

    def _finish_swaps(self) -> list[str]:
        """Complete an overwrite's swap that a kill interrupted (see the module docstring); a
        line for each."""
        done = []
        groups = set(self.backend.group_names())
        for old in sorted(g for g in groups if g.endswith(OLD_SUFFIX)):
            split = old.removesuffix(OLD_SUFFIX)
            if check_clip_id(split) is not None:
                continue  # not a name fat gives a split: a crafted store's, left alone
            new = split + NEW_SUFFIX
            if split in groups:
                done.append(f"split {split}: removed {old}, the copy an --overwrite replaced")
            elif new in groups:
                self.backend.rename_split(new, split)
                done.append(f"split {split}: finished the --overwrite a kill interrupted")
            else:
                self.backend.rename_split(old, split)
                done.append(
                    f"split {split}: restored from {old}, where a killed --overwrite left it"
                )
            if old in set(self.backend.group_names()):
                self.backend.delete_split(old)
        return done

    def delete_split(self, split: str) -> None:
        if self.mode != "a":
            raise FatError(f"{self.path}: opened read-only")
        self._splits.pop(split, None)
        self.backend.delete_split(split)

    def verify(
        self, check_data: bool = True, progress: Callable[[int], None] | None = None
    ) -> tuple[list[str], list[str]]:
        """(problems, notes) over every split; a split that cannot be read is a problem that
        names it and the reason, never an exception."""
        problems: list[str] = []
        notes: list[str] = []
        groups = set(self._groups())
        half_swapped = self._half_swapped()
        for split, state in half_swapped.items():
            problems.append(f"split {split}: {state}")
        for name in sorted(groups):
            if name.endswith(OLD_SUFFIX):
                split = name.removesuffix(OLD_SUFFIX)
                if split in groups:
                    notes.append(
                        f"split {split}: {name!r}, the copy an --overwrite replaced, is still "
                        "here; opening the store for writing removes it"
                    )
                elif split not in half_swapped:
                    problems.append(f"split {name!r}: not a valid split name")
                continue
            if name.endswith(NEW_SUFFIX):
                if name.removesuffix(NEW_SUFFIX) in half_swapped:
                    continue  # the half-swapped split's problem says what it is
                notes.append(
                    f"split {name.removesuffix(NEW_SUFFIX)}: an unfinished --overwrite left its "
                    f"replacement {name!r}; rerun it to finish, or the old split stays"
                )
                continue
            reason = check_clip_id(name)
            if reason:
                problems.append(f"split {name!r}: not a valid split name ({reason})")
                continue
            try:
                p, n = verify_split(self.split(name), check_data=check_data, progress=progress)
            except SplitUnreadable as e:
                p, n = [f"split {name}: unreadable ({e.reason})"], []
            except Exception as e:  # noqa: BLE001 - unreadable frames are what verify reports
                p, n = [f"split {name}: unreadable ({type(e).__name__}: {e})"], []
            problems += p
            notes += n
        problems += self._mixed_splits()
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


def store_format(path: Path | str, format: str | None = None, mode: str = "r") -> str:
    """The format of the store at `path` (a local path or a URL): `format`, else the suffix,
    else what is there; see `fat.store.backends.format_for`."""
    if format is None and is_url(path) and Path(str(path)).suffix.lower() not in SUFFIXES:
        return "zarr"  # object storage holds only Zarr stores; the backend checks its zarr.json
    return format_for(path, format, mode)


def open_store(
    path: Path | str,
    mode: str = "r",
    format: str | None = None,
    chunk_cache: ChunkCacheSpec | None = None,
) -> FeatureStore:
    """Open (mode "a": create) a feature store: a local path, or a URL of a Zarr store on
    object storage (read-only; `chunk_cache` keeps the frame chunks it reads on local disk).
    The format follows the suffix unless given, else the contents of an existing store; a new
    store needs a .zarr or .h5 suffix or `format`."""
    return FeatureStore(path, mode=mode, format=format, chunk_cache=chunk_cache)


def repair_store(path: Path | str) -> list[str]:
    """What a writer does on opening, for a store nobody is writing now (`fat store repair`):
    finish what a killed writer left (an HDF5 file still marked open for writing, an
    interrupted compaction, an overwrite's swap), and roll each split whose index points
    outside its arrays, or whose last commit does not read back, to its last good commit (its
    mel statistics recomputed). One line per thing done."""
    if is_url(path):
        raise FatError(f"{path}: stores on object storage are read-only to fat; repair the copy")
    lines: list[str] = []
    with open_store(path, "a") as store:
        lines += store.recovered
        for name in store.splits():
            try:
                meta = SplitMeta.from_dict(store.backend.meta(name))
                writer = SplitWriter(store.backend, meta, name)
            except FatError as e:
                lines.append(f"split {name}: cannot be repaired ({e})")
                continue
            if writer.recovery:
                if writer.n_clips:
                    writer.update_stats()
                lines.append(f"split {name}: {writer.recovery}")
    return lines or [f"{path}: nothing to repair"]


def _open_split(path: str, format: str, name: str, chunk_cache: ChunkCacheSpec | None) -> Split:
    """A split reopened read-only by path, in whichever process asks (see `Split.__reduce__`)."""
    return FeatureStore(path, "r", format, chunk_cache).split(name)

"""What a run trains on: the training splits, their hold-out, and per-epoch crop plans.

Everything random here is a pure function of (seed, epoch), so the DALI path, the torch path,
a resumed run and every DDP rank agree on which crops make up each batch without talking.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fat.core.errors import FatError
from fat.core.holdout import holdout_mask
from fat.store import FeatureStore, Split, open_store
from fat.store.normalize import Normalizer
from fat.store.remote import ChunkCacheSpec


def available_memory() -> int:
    """Bytes of RAM the system can give without swapping (MemAvailable), else all of it."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_budget(gb: float | None, workers: int) -> tuple[int, str]:
    """(bytes, how they were chosen) of RAM for training splits: `gb` when given, else what is
    available minus 2 GiB (model, optimizer, torch and DALI), 1 GiB per loader worker (each is
    a process of its own) and 10% (page cache, other processes)."""
    if gb is not None:
        return int(gb * 2**30), f"{gb:g} GiB (--memory-budget-gb)"
    available = available_memory()
    budget = max(0, int(available * 0.9) - (2 + workers) * 2**30)
    rule = f"available {available / 2**30:.1f} GiB - 2 GiB - {workers} x 1 GiB - 10%"
    return budget, f"{budget / 2**30:.1f} GiB ({rule})"


@dataclass(frozen=True)
class TrainingSplit:
    """One store split as a run uses it: the split (in RAM when the budget allows, else read
    from disk) and which of its clips train and which validate."""

    name: str
    split: Split
    train: np.ndarray  # clip indices that train
    val: np.ndarray  # clip indices held out
    targets: np.ndarray | None = None  # (clips, classes) soft targets instead of the labels

    def targets_of(self, clips: np.ndarray) -> np.ndarray:
        """What the clips train towards: their soft targets when the run has them, else labels."""
        source = self.split.labels if self.targets is None else self.targets
        return source[clips].astype(np.float32)

    @property
    def where(self) -> str:
        if self.split.in_memory:
            return "in RAM"
        reads = "direct chunk reads" if self.split.direct is not None else "zarr reads"
        return f"from disk ({reads})"


@dataclass
class TrainingData:
    """The training splits of a run and the normaliser of their frames. A context manager: the
    store that disk-backed splits read from is closed on exit."""

    splits: list[TrainingSplit]
    normalizer: Normalizer
    store: FeatureStore | None = None

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.splits]

    @property
    def n_train(self) -> int:
        return sum(len(s.train) for s in self.splits)

    def assignments(self) -> dict[str, dict]:
        """Per split, what the run saves to be checked and reused when it resumes: generation,
        clip count, and the ids of the clips that train and that validate."""
        return {
            s.name: {
                "generation": s.split.meta.generation,
                "n_clips": len(s.split),
                "train": [s.split.clip_ids[i] for i in s.train],
                "val": [s.split.clip_ids[i] for i in s.val],
            }
            for s in self.splits
        }

    def absent_classes(self) -> list[str]:
        """Classes no training clip carries: the model can only learn them as always absent."""
        present = sum(s.split.labels[s.train].sum(axis=0) for s in self.splits)
        return [c for c, n in zip(self.splits[0].split.vocabulary, present, strict=True) if not n]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> "TrainingData":
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "store": None}  # disk splits reopen their own store


def load_training_data(
    store_path: Path | str,
    names: tuple[str, ...],
    val_fraction: float,
    seed: int,
    memory_budget_bytes: int,
    noisy_clips: list[str] | None = None,
    saved: dict[str, dict] | None = None,
    saved_normalizer: Normalizer | None = None,
    folds: int = 0,
    fold: int = 0,
    soft_targets: dict[str, tuple[list[str], tuple[str, ...], np.ndarray]] | None = None,
    chunk_cache: ChunkCacheSpec | None = None,
    val_split: str = "",
    folds_from: str = "stratified",
) -> TrainingData:
    """The named splits of the store with their hold-out. Splits go into RAM smallest first
    while they fit `memory_budget_bytes` together; the others stream from disk, and none is
    loaded part-way. `saved` (a resumed run's `assignments()`) and `saved_normalizer`: reuse
    them, after checking that each split is still the one the run started on. `folds`/`fold`:
    the first split's fold `fold` validates instead (`fat.core.holdout.holdout_mask`).
    `soft_targets` (per split: clip ids, vocabulary, values; `read_submission`): soft
    targets to train towards instead of the labels, one row for each of the split's clips.
    `chunk_cache`: for a store on object storage, where the frame chunks of the splits that
    stream are kept once read.
    `val_split`: a split that validates whole, the training splits then training whole;
    `folds_from="dataset"`: the folds are the data set's own (each clip's info["fold"])."""
    store = open_store(store_path, "r", chunk_cache=chunk_cache)
    try:
        raw = [_trainable_split(store, store_path, name) for name in names]
        validating = [_trainable_split(store, store_path, val_split)] if val_split else []
        first = raw[0].feature_config
        for s in raw[1:] + validating:
            if s.feature_config != first:
                diffs = "; ".join(first.differences(s.feature_config))
                raise FatError(f"splits {raw[0].name!r} and {s.name!r} differ in features: {diffs}")
        normalizer = saved_normalizer or Normalizer.from_splits(raw)
        if not (np.isfinite(normalizer.mean).all() and np.isfinite(normalizer.std).all()):
            raise FatError(
                f"{store_path}: the frames of split(s) {', '.join(names)} hold non-finite values "
                f"(their mel statistics are not finite); `fat store verify {store_path}` lists "
                "the clips"
            )
        in_ram, used = set(), 0
        for split in sorted(raw + validating, key=lambda s: s.nbytes()):
            if used + split.nbytes() <= memory_budget_bytes:
                in_ram.add(split.name)
                used += split.nbytes()
        splits = []
        for position, split in enumerate(raw):
            if saved is not None:
                train, val = _saved_assignment(split, saved, store_path)
            else:
                shipped = (
                    dataset_folds(split) if folds_from == "dataset" and position == 0 else None
                )
                held = holdout_mask(
                    split.labels, 0.0 if val_split else val_fraction, seed, position, folds, fold,
                    shipped,
                )  # fmt: skip
                keep = ~held & (split.labels.sum(axis=1) > 0)
                if split.name == "noisy" and noisy_clips is not None:
                    keep &= _chosen(split, noisy_clips)
                train, val = np.flatnonzero(keep), np.flatnonzero(held)
            loaded = split.load() if split.name in in_ram else split
            targets = None
            if split.name in (soft_targets or {}):
                targets = _aligned_targets(split, soft_targets[split.name])
            splits.append(TrainingSplit(split.name, loaded, train, val, targets))
        for split in validating:
            if saved is not None:
                train, val = _saved_assignment(split, saved, store_path)
            else:
                train, val = np.zeros(0, np.int64), np.flatnonzero(split.labels.sum(axis=1) > 0)
            loaded = split.load() if split.name in in_ram else split
            splits.append(TrainingSplit(split.name, loaded, train, val))
    except BaseException:
        store.close()
        raise
    on_disk = len(in_ram) < len(splits)
    if not on_disk:
        store.close()
    data = TrainingData(splits, normalizer, store if on_disk else None)
    if data.n_train == 0:
        data.close()
        raise FatError("no clips left to train on after the validation hold-out")
    return data


def dataset_folds(split: Split) -> np.ndarray:
    """Each clip's fold as the data set ships it (its info["fold"]); FatError naming a clip
    without one: `--folds dataset` needs a data set that has folds (ESC-50, a csv with a fold
    column)."""
    folds = [split.info(i).get("fold") for i in range(len(split))]
    missing = [split.clip_ids[i] for i, f in enumerate(folds) if f is None]
    if missing:
        raise FatError(
            f"split {split.name!r}: clip {missing[0]!r} has no fold; the data set ships no folds "
            "(--folds dataset needs esc50, or a csv manifest with a fold column)"
        )
    return np.array(folds)


def _aligned_targets(split: Split, given: tuple[list[str], tuple[str, ...], np.ndarray]):
    """The given soft targets in the split's clip order; FatError naming what does not fit."""
    ids, vocabulary, values = given
    what = f"{split.name} targets"
    if tuple(vocabulary) != tuple(split.vocabulary):
        raise FatError(f"{what}: their classes are not the store's vocabulary, in order")
    row = {clip_id: k for k, clip_id in enumerate(ids)}
    missing = [c for c in split.clip_ids if c not in row]
    if missing:
        raise FatError(
            f"{what}: {len(missing)} {split.name} clips have none (e.g. {missing[0]!r}); make "
            f"them for the whole {split.name} split (`fat pseudo-label`, `--teacher`)"
        )
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise FatError(f"{what}: values must be probabilities in [0, 1]")
    return values[[row[c] for c in split.clip_ids]].astype(np.float32)


def _trainable_split(store: FeatureStore, store_path: Path | str, name: str) -> Split:
    if name not in store:
        raise FatError(f"{store_path}: no split {name!r}; featurize it first")
    split = store.split(name)
    if len(split) == 0:
        raise FatError(f"{store_path}: split {name!r} has no committed clips")
    if split.labels.sum() == 0:
        raise FatError(f"{store_path}: split {name!r} has no labels to train on")
    return split


def _saved_assignment(
    split: Split, saved: dict[str, dict], store_path: Path | str
) -> tuple[np.ndarray, np.ndarray]:
    """The saved train/validation clips of `split`, refused when the split changed since."""
    mine = saved.get(split.name)
    if mine is None:
        raise FatError(f"--resume: the run did not train on split {split.name!r}")
    if mine["generation"] != split.meta.generation:
        raise FatError(
            f"--resume: split {split.name!r} of {store_path} was replaced (featurized again) "
            "since the run started; resume needs the store as it was, or start a new run"
        )
    if mine["n_clips"] != len(split):
        raise FatError(
            f"--resume: split {split.name!r} of {store_path} had {mine['n_clips']} clips when "
            f"the run started and has {len(split)} now; its hold-out and normaliser would "
            "change: resume with the store as it was, or start a new run"
        )
    return (
        np.array([split.index_of(c) for c in mine["train"]], np.int64),
        np.array([split.index_of(c) for c in mine["val"]], np.int64),
    )


def _chosen(split: Split, clip_ids: list[str]) -> np.ndarray:
    missing = [c for c in clip_ids if c not in split]
    if missing:
        raise FatError(
            f"noisy clip list names {len(missing)} clips not in the store, e.g. {missing[0]!r}"
        )
    chosen = np.zeros(len(split), bool)
    chosen[[split.index_of(c) for c in clip_ids]] = True
    return chosen


def class_balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Sampling probabilities of clips (rows of `labels`) under which every class present is
    drawn about equally often: each clip weighs the sum of 1 / (clips of the class) over its
    labels."""
    labels = np.asarray(labels, np.float64) > 0
    counts = labels.sum(axis=0)
    weights = labels @ np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    if weights.sum() <= 0:
        raise FatError("balanced sampling: no training clip carries a label")
    return weights / weights.sum()


@dataclass(frozen=True)
class CropPlan:
    """One epoch's samples in order: which split, which clip, where the crop starts."""

    split: np.ndarray  # (n,) int index into TrainingData.splits
    clip: np.ndarray  # (n,) clip index inside its split
    start: np.ndarray  # (n,) first frame of the crop (0 for clips shorter than the crop)
    batch_size: int

    @property
    def n_batches(self) -> int:
        return len(self.split) // self.batch_size

    def batch(self, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = slice(b * self.batch_size, (b + 1) * self.batch_size)
        return self.split[s], self.clip[s], self.start[s]


def crop_plan(
    data: TrainingData,
    epoch: int,
    seed: int,
    batch_size: int,
    crop_frames: int,
    steps: int = 0,
    split_weights: dict[str, float] | None = None,
    sampler: str = "shuffle",
) -> CropPlan:
    """The samples of `epoch` (1-based). Without weights: every training clip once, shuffled,
    the last partial batch dropped (BatchNorm dislikes tiny batches). With weights: each sample
    picks its split by weight, then walks that split's shuffled clips (reshuffled on wrap).
    `sampler="balanced"`: clips drawn with replacement, each with the weight of its labels'
    rarity (the sum of 1 / clips per class), so every class is drawn about equally often."""
    rng = np.random.default_rng([seed, epoch])
    trains = [s.train for s in data.splits]
    pool_split = np.concatenate([np.full(len(t), i) for i, t in enumerate(trains)])
    pool_clip = np.concatenate(trains)
    # Without a step count, whole batches of distinct clips (a partial last batch is dropped).
    n = steps * batch_size if steps else len(pool_clip) // batch_size * batch_size
    balanced = sampler == "balanced"
    if balanced and not split_weights:
        labels = np.concatenate([s.split.labels[s.train] for s in data.splits])
        order = rng.choice(len(pool_clip), size=n, p=class_balanced_weights(labels))
        split, clip = pool_split[order], pool_clip[order]
    elif not split_weights:
        passes = [rng.permutation(len(pool_clip)) for _ in range(-(-n // len(pool_clip)))]
        order = np.concatenate(passes or [np.zeros(0, np.int64)])[:n]
        split, clip = pool_split[order], pool_clip[order]
    else:
        weights = np.array([split_weights.get(name, 0.0) for name in data.names], float)
        weights[[len(t) == 0 for t in trains]] = 0
        if weights.sum() <= 0:
            raise FatError(f"split weights {split_weights} leave no split to sample")
        split = rng.choice(len(weights), size=n, p=weights / weights.sum())
        clip = np.empty(n, np.int64)
        for i, members in enumerate(trains):
            picks = np.flatnonzero(split == i)
            if len(picks) and balanced:
                p = class_balanced_weights(data.splits[i].split.labels[members])
                clip[picks] = rng.choice(members, size=len(picks), p=p)
            elif len(picks):
                reps = -(-len(picks) // len(members))
                walk = np.concatenate([rng.permutation(members) for _ in range(reps)])
                clip[picks] = walk[: len(picks)]
    lengths = np.empty(len(clip), np.int64)
    for i, s in enumerate(data.splits):
        chosen = split == i
        lengths[chosen] = s.split.lengths[clip[chosen]]
    start = (rng.random(len(clip)) * (np.maximum(lengths - crop_frames, 0) + 1)).astype(np.int64)
    return CropPlan(split.astype(np.int64), clip.astype(np.int64), start, batch_size)

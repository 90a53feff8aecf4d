"""What a run trains on: clip sets, validation hold-out, per-epoch crop plans, batch gathers.

Everything random here is a pure function of (seed, epoch), so the DALI path, the torch path,
a resumed run and every DDP rank agree on which crops make up each batch without talking.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fat.errors import FatError
from fat.ids import check_clip_id
from fat.store import Split, open_store

STD_FLOOR = 1e-3  # a constant mel band (e.g. above a low sample rate's Nyquist) has std 0


@dataclass(frozen=True)
class Normalizer:
    """Per-mel standardisation with the training splits' statistics, kept with the run."""

    mean: np.ndarray  # (n_mels,) float32
    std: np.ndarray  # (n_mels,) float32

    @classmethod
    def from_splits(cls, splits: list[Split]) -> "Normalizer":
        """Pooled mean/std over the splits' frames, from each split's stored statistics."""
        n = np.array([s.n_frames for s in splits], dtype=np.float64)
        stats = [s.stats if s.stats is not None else s.compute_stats() for s in splits]
        means = np.stack([m for m, _ in stats])
        second = np.stack([sd**2 + m**2 for m, sd in stats])
        mean = (n[:, None] * means).sum(0) / n.sum()
        var = (n[:, None] * second).sum(0) / n.sum() - mean**2
        std = np.maximum(np.sqrt(np.maximum(var, 0)), STD_FLOOR)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def apply(self, frames: np.ndarray, out_dtype=np.float16) -> np.ndarray:
        """(..., n_mels) raw frames -> normalised, in `out_dtype`."""
        return ((frames.astype(np.float32) - self.mean) / self.std).astype(out_dtype)


def normalised_in_memory(split: Split, normalizer: Normalizer, block: int = 1 << 16) -> Split:
    """The split in RAM with frames already normalised: the per-batch work becomes a pure gather.

    float16 after standardisation keeps ~3 significant digits of values near N(0, 1), far below
    the noise of the features themselves.
    """
    frames = np.empty((split.n_frames, split.feature_config.n_mels), np.float16)
    for lo, rows in split.iter_blocks(block):
        frames[lo : lo + len(rows)] = normalizer.apply(rows)
    return split.with_frames(frames)


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation clips: about `fraction` of the clips of every class.

    Greedy from the rarest class up, so rare classes get their share before common ones fill
    the quota; multi-label clips count for all their classes. Fixed by `seed`.
    """
    n = len(labels)
    val = np.zeros(n, bool)
    if fraction <= 0 or n < 2:
        return val
    rng = np.random.default_rng([seed, 7919])
    order = rng.permutation(n)
    assigned = np.zeros(n, bool)
    counts = labels.sum(axis=0)
    for c in np.argsort(counts, kind="stable"):
        if counts[c] == 0:
            continue
        members = order[labels[order, c] > 0]
        target = int(round(fraction * len(members)))
        have = int(val[members].sum())
        for i in members[~assigned[members]]:
            val[i] = have < target
            have += int(val[i])
            assigned[i] = True
    rest = order[~assigned]
    val[rest[: int(round(fraction * len(rest)))]] = True
    if val.all():
        val[order[0]] = False
    return val


def read_clip_list(path: Path) -> list[str]:
    """One clip id per line (blank lines and `#` comments ignored); bad ids name their line."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise FatError(f"{path}: cannot read clip list ({e.strerror or e})") from None
    ids = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            reason = check_clip_id(line)
            if reason:
                raise FatError(f"{path}:{n}: {reason}")
            ids.append(line)
    return ids


@dataclass
class TrainingData:
    """The training splits (in RAM when they fit), which clips train and which validate."""

    splits: list[Split]  # normalised, in the order of `names`
    names: list[str]
    train: list[np.ndarray]  # per split: clip indices that train
    val: list[np.ndarray]  # per split: clip indices held out
    normalizer: Normalizer

    @property
    def n_train(self) -> int:
        return sum(len(t) for t in self.train)

    def normalizer_for(self, split: Split) -> Normalizer | None:
        """What crops read from `split` still need: nothing for a split normalised into RAM at
        load, the normalizer for one read raw from disk (over the memory budget)."""
        return None if split.in_memory else self.normalizer


def holdout_mask(labels: np.ndarray, val_fraction: float, seed: int, position: int) -> np.ndarray:
    """Validation clips of the `position`-th training split of a run: the one rule shared by the
    trainer and by evaluating the run later."""
    return stratified_holdout(labels, val_fraction, seed + position)


def load_training_data(
    store_path: Path | str,
    names: tuple[str, ...],
    val_fraction: float,
    seed: int,
    memory_budget_bytes: int,
    noisy_clips: list[str] | None = None,
) -> TrainingData:
    store = open_store(store_path, "r")
    raw = []
    for name in names:
        if name not in store:
            raise FatError(f"{store_path}: no split {name!r}; featurize it first")
        split = store.split(name)
        if len(split) == 0:
            raise FatError(f"{store_path}: split {name!r} has no committed clips")
        if split.labels.sum() == 0:
            raise FatError(f"{store_path}: split {name!r} has no labels to train on")
        raw.append(split)
    first = raw[0].feature_config
    for s in raw[1:]:
        if s.feature_config != first:
            diffs = "; ".join(first.differences(s.feature_config))
            raise FatError(f"splits {raw[0].name!r} and {s.name!r} differ in features: {diffs}")
    normalizer = Normalizer.from_splits(raw)
    total = sum(s.nbytes() for s in raw) * 2  # float32 staging during normalisation
    splits = [
        normalised_in_memory(s, normalizer) if total <= memory_budget_bytes else s for s in raw
    ]
    train, val = [], []
    for i, split in enumerate(splits):
        held = holdout_mask(split.labels, val_fraction, seed, i)
        keep = ~held
        if split.name == "noisy" and noisy_clips is not None:
            chosen = np.zeros(len(split), bool)
            missing = [c for c in noisy_clips if c not in split]
            if missing:
                raise FatError(
                    f"noisy clip list names {len(missing)} clips not in the store, "
                    f"e.g. {missing[0]!r}"
                )
            chosen[[split.index_of(c) for c in noisy_clips]] = True
            keep &= chosen
        keep &= split.labels.sum(axis=1) > 0
        train.append(np.flatnonzero(keep))
        val.append(np.flatnonzero(held))
    if sum(len(t) for t in train) == 0:
        raise FatError("no clips left to train on after the validation hold-out")
    return TrainingData(splits, list(names), train, val, normalizer)


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
) -> CropPlan:
    """The samples of `epoch` (1-based). Without weights: every training clip once, shuffled,
    the last partial batch dropped (BatchNorm dislikes tiny batches). With weights: each sample
    picks its split by weight, then walks that split's shuffled clips (reshuffled on wrap)."""
    rng = np.random.default_rng([seed, epoch])
    pool_split = np.concatenate([np.full(len(t), i) for i, t in enumerate(data.train)])
    pool_clip = np.concatenate(data.train)
    if not split_weights:
        n = steps * batch_size if steps else max(len(pool_clip) // batch_size, 1) * batch_size
        order = np.concatenate(
            [rng.permutation(len(pool_clip)) for _ in range(-(-n // len(pool_clip)))]
        )[:n]
        split, clip = pool_split[order], pool_clip[order]
    else:
        weights = np.array([split_weights.get(name, 0.0) for name in data.names], float)
        weights[[len(t) == 0 for t in data.train]] = 0
        if weights.sum() <= 0:
            raise FatError(f"split weights {split_weights} leave no split to sample")
        n = steps * batch_size if steps else max(len(pool_clip) // batch_size, 1) * batch_size
        split = rng.choice(len(weights), size=n, p=weights / weights.sum())
        clip = np.empty(n, np.int64)
        for i, members in enumerate(data.train):
            picks = np.flatnonzero(split == i)
            if len(picks):
                reps = -(-len(picks) // len(members))
                walk = np.concatenate([rng.permutation(members) for _ in range(reps)])
                clip[picks] = walk[: len(picks)]
    lengths = np.empty(len(clip), np.int64)
    for i, members in enumerate(data.splits):
        chosen = split == i
        lengths[chosen] = members.lengths[clip[chosen]]
    start = (rng.random(len(clip)) * (np.maximum(lengths - crop_frames, 0) + 1)).astype(np.int64)
    return CropPlan(split.astype(np.int64), clip.astype(np.int64), start, batch_size)


def gather_crops(
    split: Split,
    clips: np.ndarray,
    starts: np.ndarray,
    crop_frames: int,
    pad: str = "wrap",
    normalizer: Normalizer | None = None,
) -> np.ndarray:
    """Crops (n, n_mels, crop_frames) float16; clips shorter than the crop are repeated
    ("wrap") or filled with zeros after normalisation, i.e. the mean ("zeros").
    `normalizer` is for splits read raw from disk; RAM splits are normalised once at load.

    In RAM this is one vectorised gather per batch, which is what lets a Python source keep up
    with a GPU; on disk each crop is one contiguous read of the chunks that hold it.
    """
    lengths = split.lengths[clips]
    steps = starts[:, None] + np.arange(crop_frames)
    inside = steps < lengths[:, None]
    rows = steps % lengths[:, None] if pad == "wrap" else np.minimum(steps, lengths[:, None] - 1)
    if split.in_memory:
        out = split.gather_rows(split.offsets[clips][:, None] + rows)
    else:
        dtype = split.feature_config.dtype
        out = np.empty((len(clips), crop_frames, split.feature_config.n_mels), dtype)
        for k, (c, s) in enumerate(zip(clips.tolist(), starts.tolist(), strict=True)):
            span = min(crop_frames, int(lengths[k]) - s)
            block = split.read_crop(c, s, span).T
            out[k] = block[rows[k] - s] if span < crop_frames else block
    if normalizer is not None:
        out = normalizer.apply(out)
    if pad == "zeros":
        out[~inside] = 0
    return out.transpose(0, 2, 1)

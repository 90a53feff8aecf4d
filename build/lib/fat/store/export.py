"""A store split in the formats other tools read (`fat store export`): one owner per format.

- npz: `frames` (all clips' frames concatenated, (total_frames, n_mels), the store's dtype),
  `offsets`, `lengths`, `clip_ids`, `labels` (multi-hot, (n_clips, n_classes)), `vocabulary`
  and `feature_config` (JSON); reads with `np.load(path)`, no pickle.
- hf: a Hugging Face `datasets` dataset (`save_to_disk`): `clip_id`, `log_mel` (an Array2D of
  (n_frames, n_mels)) and `labels` (a list of ClassLabel), the feature config in its
  description; reads with `datasets.load_from_disk`.
- lhotse: a CutSet (`cuts.jsonl.gz`) whose cuts carry their log-mel as lhotse Features in
  `feats.h5` (lossless numpy HDF5 storage, (n_frames, n_mels)) and their labels in
  `cut.custom["labels"]` and in one supervision each; reads with `CutSet.from_file`.

Every export is written beside OUT and renamed into place at the end, so an export that dies
half-way leaves nothing that looks finished.
"""

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fat.core.errors import FatError
from fat.core.files import fsync_directory
from fat.core.progress import progress_bar
from fat.store.reader import Split

FORMATS = ("npz", "hf", "lhotse")


@dataclass(frozen=True)
class ExportSummary:
    out: Path
    format: str
    clips: int
    frames: int


def export_split(
    split: Split,
    out: Path,
    fmt: str,
    clip_ids: list[str] | None = None,
    progress: bool = True,
) -> ExportSummary:
    """Write `split` (or only `clip_ids` of it) to `out` in format `fmt`."""
    if fmt not in FORMATS:
        raise FatError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists():
        raise FatError(f"{out}: already exists; remove it or choose another OUT")
    rows = [split.index_of(c) for c in clip_ids] if clip_ids else list(range(split.n_clips))
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    bar = progress_bar(total=len(rows), desc=f"export {fmt}", unit="clip", show=progress)
    try:
        with bar:
            WRITERS[fmt](split, rows, partial, out, bar.update)
        os.replace(partial, out)
        fsync_directory(out.parent)
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        elif partial.exists():
            partial.unlink()
    frames = int(split.lengths[rows].sum())
    return ExportSummary(out, fmt, len(rows), frames)


def _clips(split: Split, rows: list[int], advance: Callable[[int], object]) -> Iterator:
    """(clip id, (n_frames, n_mels) frames, label names) of each row, in order."""
    ids, labels, vocabulary = split.clip_ids, split.labels, split.vocabulary
    for i in rows:
        names = [vocabulary[k] for k in np.flatnonzero(labels[i])]
        yield ids[i], np.ascontiguousarray(split.read(i).T), names
        advance(1)


def _write_npz(split: Split, rows: list[int], partial: Path, out: Path, advance) -> None:
    lengths = split.lengths[rows].astype(np.int64)
    dtype = split.read_rows(0, 0).dtype
    frames = np.empty((int(lengths.sum()), split.feature_config.n_mels), dtype)
    at = 0
    for _, clip, _ in _clips(split, rows, advance):
        frames[at : at + len(clip)] = clip
        at += len(clip)
    with open(partial, "wb") as f:
        np.savez(
            f,
            frames=frames,
            offsets=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
            lengths=lengths,
            clip_ids=np.array([split.clip_ids[i] for i in rows]),
            labels=split.labels[rows],
            vocabulary=np.array(split.vocabulary),
            feature_config=np.array(json.dumps(split.feature_config.to_dict())),
        )
        f.flush()
        os.fsync(f.fileno())


def _write_hf(split: Split, rows: list[int], partial: Path, out: Path, advance) -> None:
    try:
        from datasets import Array2D, ClassLabel, Dataset, DatasetInfo, Features, List, Value
    except ImportError:
        raise FatError("--format hf needs datasets: pip install 'fat-audio[hf]'") from None
    dtype = str(split.read_rows(0, 0).dtype)
    features = Features(
        {
            "clip_id": Value("string"),
            "log_mel": Array2D(shape=(None, split.feature_config.n_mels), dtype=dtype),
            "labels": List(ClassLabel(names=list(split.vocabulary))),
        }
    )

    def examples():
        for clip_id, clip, names in _clips(split, rows, advance):
            yield {"clip_id": clip_id, "log_mel": clip, "labels": names}

    config = json.dumps({"split": split.name, "feature_config": split.feature_config.to_dict()})
    info = DatasetInfo(description=f"fat store export; log_mel is (n_frames, n_mels). {config}")
    cache = partial.with_name(partial.name + "-cache")
    try:
        dataset = Dataset.from_generator(examples, features=features, cache_dir=str(cache))
        dataset = Dataset(dataset.data, info=info, split=dataset.split)
        dataset.save_to_disk(str(partial))
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _write_lhotse(split: Split, rows: list[int], partial: Path, out: Path, advance) -> None:
    try:
        from lhotse import CutSet, Features, MonoCut, SupervisionSegment
        from lhotse.features.io import NumpyHdf5Writer
    except ImportError:
        raise FatError("--format lhotse needs lhotse: pip install 'fat-audio[lhotse]'") from None
    cfg = split.feature_config
    frame_shift = cfg.hop_length / cfg.sample_rate
    partial.mkdir()
    cuts = []
    # The manifest names where feats.h5 will be once the folder is renamed into place.
    final_storage = str((out / "feats.h5").absolute())
    with NumpyHdf5Writer(partial / "feats.h5") as writer:
        for clip_id, clip, names in _clips(split, rows, advance):
            key = writer.write(clip_id, clip)
            duration = round(len(clip) * frame_shift, 6)
            features = Features(
                type="fat-log-mel",
                num_frames=len(clip),
                num_features=cfg.n_mels,
                frame_shift=frame_shift,
                sampling_rate=cfg.sample_rate,
                start=0.0,
                duration=duration,
                storage_type=writer.name,
                storage_path=final_storage,
                storage_key=key,
            )
            supervision = SupervisionSegment(
                id=clip_id, recording_id=clip_id, start=0.0, duration=duration,
                custom={"labels": names},
            )  # fmt: skip
            cuts.append(
                MonoCut(
                    clip_id, 0.0, duration, 0, [supervision], features, custom={"labels": names}
                )
            )
    CutSet.from_cuts(cuts).to_file(partial / "cuts.jsonl.gz")
    (partial / "feature_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))


WRITERS = {"npz": _write_npz, "hf": _write_hf, "lhotse": _write_lhotse}

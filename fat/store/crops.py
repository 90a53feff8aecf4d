"""`gather_crops`: fixed-length crops of many clips of a split, as stored (raw frames,
time-major): the one gather every model input (training, validation, prediction) starts from.
Normalisation and padding happen where the model runs (`fat.predict.inference.model_input`)."""

import numpy as np

from fat.store.reader import Split

PADS = ("wrap", "zeros")


def gather_crops(
    split: Split,
    clips: np.ndarray,
    starts: np.ndarray,
    crop_frames: int,
    prefetch: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(crops, own): crops (n, crop_frames, n_mels) in the store dtype, a clip shorter than the
    crop repeated to fill it; own (n,) int32, how many frames of each crop are the clip's own
    before any repeat (what padding with zeros replaces).

    In RAM this is one vectorised gather per batch; on disk the store's chunk files are read
    directly (one read per crop, the whole batch's pages requested at once unless `prefetch`
    is off because the caller asked for them earlier, `prefetch_crops`) where the layout allows
    (`fat.store.direct`), else through zarr, each chunk the batch touches read once (a zstd or
    a remote store), else (HDF5) crop by crop.
    """
    clips, starts = np.asarray(clips, np.int64), np.asarray(starts, np.int64)
    lengths = split.lengths[clips]
    own = np.minimum(lengths - starts, crop_frames).astype(np.int32)
    inside = own == crop_frames
    if split.in_memory and inside.all():  # the common case, without the wrap arithmetic
        rows = (split.offsets[clips] + starts)[:, None] + np.arange(crop_frames)
        return split.gather_rows(rows), own
    rows = (starts[:, None] + np.arange(crop_frames)) % lengths[:, None]
    if split.direct is not None:
        out = _direct_crops(split, clips, starts, crop_frames, rows, inside, prefetch)
    elif split.gathers:  # in RAM, or one read of every chunk the batch touches (zarr)
        out = split.gather_rows(split.offsets[clips][:, None] + rows)
    else:  # HDF5 on disk: a slice per crop, which h5py reads best
        out = np.empty(
            (len(clips), crop_frames, split.feature_config.n_mels), split.meta.feature_config.dtype
        )
        for k, (c, s) in enumerate(zip(clips.tolist(), starts.tolist(), strict=True)):
            block = split.read_crop(c, s, int(own[k])).T
            out[k] = block[rows[k] - s] if own[k] < crop_frames else block
    if not split.in_memory:
        split.check_current()  # a split replaced mid-read reads as zeros, not as an error
    return out, own


def prefetch_crops(split: Split, clips: np.ndarray, starts: np.ndarray, crop_frames: int) -> None:
    """Ask the kernel for the disk pages of these crops now (POSIX_FADV_WILLNEED), to be read
    while other work runs: a trainer calls it for the next batch. Nothing for a split in RAM or
    one read through zarr."""
    if split.in_memory or split.direct is None:
        return
    clips, starts = np.asarray(clips, np.int64), np.asarray(starts, np.int64)
    inside = split.lengths[clips] - starts >= crop_frames
    split.direct.prefetch_runs(split.offsets[clips[inside]] + starts[inside], crop_frames)


def _direct_crops(
    split: Split,
    clips: np.ndarray,
    starts: np.ndarray,
    crop_frames: int,
    rows: np.ndarray,
    inside: np.ndarray,
    prefetch: bool,
) -> np.ndarray:
    """Crops read from the chunk files: one run per crop that lies inside its clip, a row
    gather for the clips shorter than the crop."""
    direct = split.direct
    firsts = split.offsets[clips[inside]] + starts[inside]
    if prefetch:
        direct.prefetch_runs(firsts, crop_frames)
    if inside.all():
        return direct.read_runs(firsts, crop_frames)
    out = np.empty((len(clips), crop_frames, split.feature_config.n_mels), direct.dtype)
    direct.read_runs(firsts, crop_frames, out, np.flatnonzero(inside))
    out[~inside] = direct.gather(split.offsets[clips[~inside]][:, None] + rows[~inside])
    return out

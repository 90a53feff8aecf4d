"""`gather_crops`: fixed-length crops of many clips of a split, padded and normalised, the way
every model (training, validation, prediction) reads them."""

import numpy as np

from fat.store.normalize import Normalizer
from fat.store.reader import Split

PADS = ("wrap", "zeros")


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
        split.check_current()  # a split replaced mid-read reads as zeros, not as an error
    if normalizer is not None:
        out = normalizer.apply(out)
    if pad == "zeros":
        out[~inside] = 0
    return out.transpose(0, 2, 1)

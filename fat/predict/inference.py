"""Whole-clip scores, embeddings and frame outputs from a crop-trained model: sliding windows
over each clip's full length, each window read as training reads crops (`ModelInput`)."""

from collections.abc import Callable

import numpy as np
import torch

from fat.core.errors import FatError
from fat.models.input import ModelInput
from fat.store import Split
from fat.store.crops import gather_crops


def window_hop(crop: int, overlap: float) -> int:
    """Frames from one window's start to the next."""
    return max(1, int(round(crop * (1 - overlap))))


def window_starts(length: int, crop: int, overlap: float) -> list[int]:
    """Window starts covering [0, length): every `crop * (1 - overlap)` frames, plus one flush
    with the end; a clip shorter than the crop has one window (repeated to fill it)."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, window_hop(crop, overlap)))
    if starts[-1] != length - crop:
        starts.append(length - crop)
    return starts


@torch.no_grad()
def _window_probs(
    model: torch.nn.Module, batch: torch.Tensor, frames: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Clip and (for `frames`) frame probabilities of a batch of model inputs, in eval mode."""
    was_training = model.training
    model.eval()
    if frames:
        logits, frame_probs = model.forward_frames(batch)
    else:
        logits, frame_probs = model(batch), None
    model.train(was_training)
    to_numpy = lambda t: t.double().cpu().numpy()  # noqa: E731
    probs = model.probabilities(logits)  # a softmax for single-label models, else sigmoids
    return to_numpy(probs), None if frame_probs is None else to_numpy(frame_probs)


def score_clips(
    model: torch.nn.Module,
    split: Split,
    clips: np.ndarray,
    crop_frames: int,
    inputs: ModelInput,
    overlap: float = 0.5,
    tta: str = "mean",
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Probabilities (len(clips), n_classes): each clip's windows scored and reduced by `tta`
    (mean or max over windows); a clip shorter than a window is repeated to fill it.
    `progress` is called with the number of clips finished."""

    def probs(batch: torch.Tensor) -> np.ndarray:
        return _window_probs(model, batch)[0]

    windows = ClipWindows(split, clips, crop_frames, overlap)
    scores = windows.reduce(probs, inputs, tta, batch_size, progress)
    return scores if len(scores) else np.zeros((0, split.labels.shape[1]))


@torch.no_grad()
def embed_clips(
    model: torch.nn.Module,
    split: Split,
    clips: np.ndarray,
    crop_frames: int,
    inputs: ModelInput,
    overlap: float = 0.5,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Clip embeddings (len(clips), D): the layer before the classifier (`model.features`),
    averaged over the same sliding windows `score_clips` scores."""
    if not hasattr(model, "features"):
        raise FatError(f"{type(model).__name__} has no clip embedding before a classifier")

    def embeddings(batch: torch.Tensor) -> np.ndarray:
        was_training = model.training
        model.eval()
        out = model.features(batch)[0]
        model.train(was_training)
        return out.double().cpu().numpy()

    windows = ClipWindows(split, clips, crop_frames, overlap)
    return windows.reduce(embeddings, inputs, "mean", batch_size, progress)


class ClipWindows:
    """The sliding windows over whole clips that scores and embeddings are averaged over."""

    def __init__(self, split: Split, clips: np.ndarray, crop_frames: int, overlap: float):
        owner, clip_of, start_of = [], [], []
        for k, c in enumerate(np.asarray(clips).tolist()):
            for s in window_starts(int(split.lengths[c]), crop_frames, overlap):
                owner.append(k)
                clip_of.append(c)
                start_of.append(s)
        self.split, self.n_clips, self.crop_frames = split, len(clips), crop_frames
        self.owner = np.array(owner, np.int64)
        self.clip, self.start = np.array(clip_of, np.int64), np.array(start_of, np.int64)

    def reduce(
        self,
        values: Callable[[torch.Tensor], np.ndarray],
        inputs: ModelInput,
        how: str,
        batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> np.ndarray:
        """`values` of every window batch, reduced per clip by `how`: mean or max."""
        total = best = None
        counts = np.bincount(self.owner, minlength=self.n_clips)
        done = 0
        for lo in range(0, len(self.owner), batch_size):
            sl = slice(lo, lo + batch_size)
            crops, own = gather_crops(self.split, self.clip[sl], self.start[sl], self.crop_frames)
            v = values(inputs(crops, own))
            if total is None:
                total = np.zeros((self.n_clips, v.shape[1]))
                best = np.full((self.n_clips, v.shape[1]), -np.inf)
            np.add.at(total, self.owner[sl], v)
            np.maximum.at(best, self.owner[sl], v)
            if progress is not None:
                end = min(lo + batch_size, len(self.owner))
                # owner[end] is the first clip with windows left; every clip before it is done.
                finished = self.n_clips if end == len(self.owner) else int(self.owner[end])
                progress(finished - done)
                done = finished
        if total is None:
            return np.zeros((0, 0))
        return total / np.maximum(counts, 1)[:, None] if how == "mean" else best


def frame_scores(
    model: torch.nn.Module,
    split: Split,
    clip: int,
    crop_frames: int,
    inputs: ModelInput,
    overlap: float = 0.5,
) -> np.ndarray | None:
    """Frame-level class probabilities over a whole clip, (T', n_classes) at the model's frame
    rate, overlapping windows averaged; None for models without frame outputs."""
    length = int(split.lengths[clip])
    starts = window_starts(length, crop_frames, overlap)
    n = len(starts)
    crops, own = gather_crops(split, np.full(n, clip), np.array(starts), crop_frames)
    _, frames = _window_probs(model, inputs(crops, own), frames=True)
    if frames is None:
        return None
    ratio = crop_frames / frames.shape[1]
    out_len = max(1, int(np.ceil(length / ratio)))
    total = np.zeros((out_len, frames.shape[2]))
    count = np.zeros(out_len)
    for s, f in zip(starts, frames, strict=True):
        first = int(round(s / ratio))
        span = min(len(f), out_len - first)
        total[first : first + span] += f[:span]
        count[first : first + span] += 1
    return total / np.maximum(count, 1)[:, None]

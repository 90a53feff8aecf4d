"""Frame-level class scores over recordings of any length, in bounded memory: the file decoded
and featurized block by block (`AudioStream`, `StreamingLogMel`), the run's model slid over
it every `hop_seconds`, and the windows covering each time step combined into its score.

Three ways to score the windows (`DetectConfig.method`):
- `shared`: one convolutional pass per block of audio, then each window pooled from it
  (`ClipClassifierModel.time_map` / `window_embeddings`: the CNN and the PANNs CNNs): the
  work of overlapping windows is done once. Windows then see their neighbours' context
  instead of zero padding at their edges; BENCHMARKS.md says how far that moves the scores.
- `windows`: every window scored alone, exactly as `fat predict` scores a crop.
- `frames`: the model's own frame outputs (the GCNN's recurrent layer), at its native
  resolution, overlapping windows averaged.
`auto` is `frames` for models with frame outputs, `shared` where the network has a time map
and a window spans at least `MIN_SHARED_STEPS` of its steps (shorter windows are mostly edge,
where context and zero padding differ most), else `windows`.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fat.core.device import torch_device
from fat.core.errors import FatError
from fat.featurize.audio import AudioStream
from fat.featurize.logmel import StreamingLogMel
from fat.models.input import ModelInput
from fat.predict.events import FrameScores
from fat.predict.settings import DetectConfig
from fat.runs.checkpoint import TrainedModel

# Frames of context beyond a block on each side for the shared pass, in multiples of the
# network's stride: more than the receptive field of its convolutions (~80 frames for the CNN).
CONTEXT_STRIDES = 8
MIN_SHARED_STEPS = 8  # the default CNN's 128-frame crop is 8 steps of its time map


@dataclass
class Detection:
    """What detecting one file gave: its scores over time and what happened on the way."""

    scores: FrameScores
    method: str
    notes: list[str] = field(default_factory=list)  # resampled from X Hz; unreadable stretches
    # (n_mels, columns): the log-mel max-pooled over time to at most `overview_columns`
    # columns, for an overview figure; `overview_step` seconds a column
    overview: np.ndarray | None = None
    overview_step: float = 0.0


def chosen_method(trained: TrainedModel, cfg: DetectConfig) -> tuple[str, int]:
    """(method, hop in feature frames) for this run: `auto` resolved, and the hop rounded to
    what the method can slide by (a multiple of the network's stride for `shared`)."""
    model, crop = trained.model, trained.experiment.crop_frames
    fps = trained.feature_config.frames_per_second
    hop = max(1, round(cfg.hop_seconds * fps))
    stride = getattr(model, "time_stride", 0)
    has_frames = _has_frame_outputs(trained)
    method = cfg.method
    if method == "auto":
        shareable = stride and crop % stride == 0 and crop // stride >= MIN_SHARED_STEPS
        method = "frames" if has_frames else "shared" if shareable else "windows"
    if method == "frames" and not has_frames:
        raise FatError(f"--method frames: arch {trained.experiment.arch!r} has no frame outputs")
    if method == "shared":
        if not stride:
            raise FatError(
                f"--method shared: arch {trained.experiment.arch!r} has no time map to share; "
                "use --method windows"
            )
        if crop % stride:
            if cfg.method == "shared":
                raise FatError(
                    f"--method shared: the crop ({crop} frames) is not a multiple of the "
                    f"network's stride ({stride}); use --method windows"
                )
            method = "windows"
        else:
            hop = max(stride, round(hop / stride) * stride)
    return method, hop


SHARP_WINDOW_S = 0.4  # twice the 0.2 s onset collar of DCASE's event-based evaluation


def combine_rule(cfg: DetectConfig, method: str, crop_seconds: float) -> str:
    """`--combine` resolved: `auto` is min where averaging would widen events by more than
    the 0.2 s an onset may be off (half a window, for windows over `SHARP_WINDOW_S`), else
    mean (frame outputs, short windows); measured in docs/events.md."""
    if cfg.combine != "auto":
        return cfg.combine
    return "min" if method != "frames" and crop_seconds > SHARP_WINDOW_S else "mean"


def _has_frame_outputs(trained: TrainedModel) -> bool:
    probe = torch.zeros(1, trained.feature_config.n_mels, trained.experiment.crop_frames)
    with torch.no_grad():
        return trained.model.eval().forward_frames(probe)[1] is not None


def detect_file(
    trained: TrainedModel,
    path: Path,
    cfg: DetectConfig,
    overview_columns: int = 0,
    progress: Callable[[float], None] | None = None,
) -> Detection:
    """Scores over time of one audio file (any length; decoded block by block). With
    `overview_columns`, also its log-mel pooled to at most that many columns (for a figure
    whose memory does not grow with the file). `progress` hears the seconds of audio done."""
    device = torch_device(cfg.device)
    trained.model.to(device).eval()
    method, hop = chosen_method(trained, cfg)
    features = trained.feature_config
    stream = AudioStream(path, features.sample_rate, cfg.block_seconds)
    inputs = ModelInput(trained.normalizer, device, "wrap")
    combine = combine_rule(cfg, method, trained.experiment.crop_frames / features.frames_per_second)
    scorer = _SCORERS[method](trained, inputs, hop, cfg.batch_size, combine)
    logmel = StreamingLogMel(features)
    notes = []
    if stream.resampled:
        notes.append(f"resampled from {stream.resampled} Hz to {features.sample_rate} Hz")
    expected = stream.source.duration_s * features.frames_per_second
    pool = max(1, int(np.ceil(expected / overview_columns))) if overview_columns else 0
    overview = _Overview(pool) if pool else None
    for block in stream:
        if block.gap:
            notes.append(f"{block.gap}: scored as silence")
        frames = _stored(logmel.feed(block.samples), features.dtype)
        scorer.add(frames)
        if overview is not None:
            overview.add(frames)
        if progress is not None:
            progress((block.start + len(block.samples)) / features.sample_rate)
    frames = _stored(logmel.finish(), features.dtype)
    scorer.add(frames)
    step, values = scorer.finish()
    # Named as event files name recordings (DCASE): by the file name alone.
    scores = FrameScores(
        Path(path).name, step / features.frames_per_second, values, trained.vocabulary
    )
    detection = Detection(scores, method, notes)
    if overview is not None:
        overview.add(frames)
        detection.overview = overview.finish()
        detection.overview_step = pool / features.frames_per_second
    return detection


class _Overview:
    """A log-mel max-pooled over time by `pool` frames, column by column as frames arrive."""

    def __init__(self, pool: int):
        self.pool, self.columns, self.rest = pool, [], None

    def add(self, frames: np.ndarray) -> None:
        if self.rest is not None:
            frames = np.concatenate([self.rest, frames], axis=1)
        whole = frames.shape[1] // self.pool * self.pool
        if whole:
            shaped = frames[:, :whole].reshape(frames.shape[0], -1, self.pool)
            self.columns.append(shaped.max(axis=2))
        self.rest = frames[:, whole:]

    def finish(self) -> np.ndarray:
        if self.rest is not None and self.rest.shape[1]:
            self.columns.append(self.rest.max(axis=1, keepdims=True))
        return np.concatenate(self.columns, axis=1) if self.columns else np.zeros((0, 0))


def _stored(frames: np.ndarray, dtype: str) -> np.ndarray:
    """Frames as a store keeps them (float16 by default): what the model learned from."""
    return frames.astype(dtype).astype(np.float32)


class _Grid:
    """Per time step, the windows covering it combined: their mean, or their minimum (a step
    counts as the class's only when every window around it says so: windows that pool over
    their length fire when any part of them holds the sound, so their mean smears an event
    by up to a window at each end, their minimum does not). Grows with the file (a few MB an
    hour), and nothing else does."""

    def __init__(self, n_classes: int, combine: str):
        self.combine = combine
        self.values = np.zeros((0, n_classes))
        self.counts = np.zeros(0)

    def add(self, first: int, values: np.ndarray) -> None:
        """`values` (k, C) combined into steps first .. first + k - 1."""
        end = first + len(values)
        if end > len(self.counts):
            grow = max(end, 2 * len(self.counts)) - len(self.counts)
            fill = np.inf if self.combine == "min" else 0.0
            more = np.full((grow, self.values.shape[1]), fill)
            self.values = np.concatenate([self.values, more])
            self.counts = np.concatenate([self.counts, np.zeros(grow)])
        if self.combine == "min":
            np.minimum(self.values[first:end], values, out=self.values[first:end])
        else:
            self.values[first:end] += values
        self.counts[first:end] += 1

    def result(self, n_steps: int) -> np.ndarray:
        values, counts = self.values[:n_steps], self.counts[:n_steps]
        out = np.zeros((n_steps, self.values.shape[1]), np.float32)
        covered = counts > 0
        if self.combine == "min":
            out[: len(values)][covered] = values[covered]
        else:
            out[: len(values)] = values / np.maximum(counts, 1)[:, None]
        return out


class _Windows:
    """Windows of `crop` frames every `hop` frames over a growing feature sequence, plus one
    flush with its end (as `fat predict` covers a clip), each window's probabilities spread
    over the time steps (of `step` frames) it covers and averaged per step."""

    def __init__(
        self, trained: TrainedModel, inputs: ModelInput, hop: int, batch: int, combine: str
    ):
        self.model, self.inputs = trained.model, inputs
        self.crop, self.hop, self.batch = trained.experiment.crop_frames, hop, batch
        self.step = hop
        self.grid = _Grid(len(trained.vocabulary), combine)
        self.buffer = np.zeros((0, trained.feature_config.n_mels), np.float32)  # frames, T-major
        self.base = 0  # absolute index of buffer[0]
        self.next = 0  # the next window's start
        self.scored = 0  # windows scored

    def add(self, frames: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, frames.T])
        self._score(self._starts(self.base + len(self.buffer)))
        keep = self.next - self.base  # frames no later window needs
        self.buffer, self.base = self.buffer[keep:], self.base + keep

    def _starts(self, end: int) -> list[int]:
        """The starts of the windows not yet scored that end by `end`."""
        starts = []
        while self.next + self.crop <= end:
            starts.append(self.next)
            self.next += self.hop
        return starts

    def finish(self) -> tuple[int, np.ndarray]:
        total = self.base + len(self.buffer)
        last = max(0, total - self.crop)
        if not self.scored or (total > self.crop and self.next - self.hop != last):
            self._score([last])  # one window flush with the end (or the only one)
        # Centred frames sit at k * hop: the last one is at the recording's end, not past it.
        return self.step, self.grid.result(max(1, -(-(total - 1) // self.step)))

    def _score(self, starts: list[int]) -> None:
        for lo in range(0, len(starts), self.batch):
            chunk = starts[lo : lo + self.batch]
            crops, own = self._crops(chunk)
            with torch.no_grad():
                probs = self.model.probabilities(self.model(self.inputs(crops, own)))
            self._spread(chunk, probs.double().cpu().numpy())

    def _crops(self, starts: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(B, crop, n_mels) raw crops and their own-frame counts; a sequence shorter than
        the crop is repeated to fill it, as `gather_crops` fills a short clip."""
        crops = np.empty((len(starts), self.crop, self.buffer.shape[1]), np.float32)
        own = np.full(len(starts), self.crop)
        for k, s in enumerate(starts):
            piece = self.buffer[s - self.base : s - self.base + self.crop]
            if len(piece) < self.crop:
                own[k] = len(piece)
                piece = np.resize(piece, (self.crop, piece.shape[1]))
            crops[k] = piece
        return crops, own

    def _spread(self, starts: list[int], probs: np.ndarray) -> None:
        """Add each window's probabilities to the time steps it covers."""
        self.scored += len(starts)
        for s, p in zip(starts, probs, strict=True):
            a, b = s // self.step, -(-(s + self.crop) // self.step)
            self.grid.add(a, np.broadcast_to(p, (b - a, len(p))))


class _SharedWindows(_Windows):
    """`_Windows` whose windows are pooled from one convolutional pass over each block (with
    context on both sides, so a block's edges do not show), not scored one by one. Window
    starts, the hop, the context and the buffer's start are all multiples of the network's
    stride, so each window is a whole run of the time map's steps."""

    def __init__(
        self, trained: TrainedModel, inputs: ModelInput, hop: int, batch: int, combine: str
    ):
        super().__init__(trained, inputs, hop, batch, combine)
        self.stride = self.model.time_stride
        self.context = CONTEXT_STRIDES * self.stride

    def add(self, frames: np.ndarray) -> None:
        # The last `context` frames wait: the windows near the end need what follows them.
        self.buffer = np.concatenate([self.buffer, frames.T])
        self._pass(self._starts(self.base + len(self.buffer) - self.context))
        keep = self.next - self.context - self.base
        if keep > 0:
            self.buffer, self.base = self.buffer[keep:], self.base + keep

    def finish(self) -> tuple[int, np.ndarray]:
        self._pass(self._starts(self.base + len(self.buffer)))
        return super().finish()

    def _pass(self, starts: list[int]) -> None:
        """Score the windows at `starts` from one time map of the frames they need plus
        context (the sequence's own edges where there is none)."""
        if not starts:
            return
        lo = max(self.base, starts[0] - self.context)
        hi = min(self.base + len(self.buffer), starts[-1] + self.crop + self.context)
        segment = self.buffer[lo - self.base : hi - self.base]
        x = self.inputs(segment[None], np.array([len(segment)]))
        width, hop = self.crop // self.stride, self.hop // self.stride
        first = (starts[0] - lo) // self.stride
        with torch.no_grad():
            seq = self.model.time_map(x)[:, :, first : first + (len(starts) - 1) * hop + width]
            logits = self.model.classifier(self.model.window_embeddings(seq, width, hop))
            probs = self.model.probabilities(logits).double().cpu().numpy()
        self._spread(starts, probs)


class _FrameOutputs(_Windows):
    """Windows scored by the model's own frame outputs (the GCNN): each window gives frame
    probabilities at the network's rate, placed at their times and averaged where windows
    overlap. Time steps are the network's frames."""

    def __init__(
        self, trained: TrainedModel, inputs: ModelInput, hop: int, batch: int, combine: str
    ):
        super().__init__(trained, inputs, hop, batch, combine)
        probe = torch.zeros(1, trained.feature_config.n_mels, self.crop)
        with torch.no_grad():
            out_frames = self.model.forward_frames(probe)[1].shape[1]
        self.step = max(1, round(self.crop / out_frames))

    def _score(self, starts: list[int]) -> None:
        for lo in range(0, len(starts), self.batch):
            chunk = starts[lo : lo + self.batch]
            crops, own = self._crops(chunk)
            with torch.no_grad():
                frames = self.model.forward_frames(self.inputs(crops, own))[1]
            self.scored += len(chunk)
            for s, f in zip(chunk, frames.double().cpu().numpy(), strict=True):
                self.grid.add(s // self.step, f)


_SCORERS = {"windows": _Windows, "shared": _SharedWindows, "frames": _FrameOutputs}


def audio_seconds(paths: list[Path]) -> Iterator[float]:
    """Each file's duration from its header (for progress totals)."""
    import soundfile as sf

    for path in paths:
        try:
            yield sf.info(str(path)).duration
        except Exception:  # noqa: BLE001 - an unreadable file is reported when it is detected
            yield 0.0

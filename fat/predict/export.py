"""`export_run`: a trained run as one self-contained model file (TorchScript or ONNX) that
maps raw log-mel crops, as a store holds them, to class probabilities; its vocabulary and
feature config go in a JSON file beside it.

The exported graph is traced at the run's crop length: it takes (batch, n_mels, crop_frames)
float32 crops (any batch size), normalises them with the run's per-band statistics, and
returns sigmoid probabilities (batch, n_classes). A clip is scored as `fat predict` scores
it: windows of crop_frames every crop_frames / 2 frames (one flush with the end), a clip
shorter than a window repeated to fill it, the windows' probabilities averaged."""

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.files import atomic_write
from fat.featurize.logmel import analysis_window, mel_filterbank
from fat.predict.inference import window_hop
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import TrainedModel, load_trained_model

FORMATS = ("torchscript", "onnx")
OVERLAP = PredictConfig().overlap  # `fat predict`'s default windows, which the manifest states


class ExportedTagger(nn.Module):
    """Raw log-mel crops (B, n_mels, T) -> probabilities (B, C): the run's normalisation, its
    network and its output (a sigmoid per class, or a softmax for a single-label run), in one
    module."""

    def __init__(self, trained: TrainedModel):
        super().__init__()
        self.model = trained.model.eval()
        self.register_buffer("mean", torch.from_numpy(trained.normalizer.mean).float()[:, None])
        self.register_buffer("std", torch.from_numpy(trained.normalizer.std).float()[:, None])

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.model.probabilities(self.model((log_mel - self.mean) / self.std))


class WaveformTagger(nn.Module):
    """A waveform at the run's sample rate, (samples,) or (samples, channels) float32 in
    [-1, 1], channels averaged -> the clip's
    probabilities (C,): the log-mel as `fat featurize` computes and stores it (its dtype's
    rounding included), `fat predict`'s sliding windows, the exported crop tagger on each, and
    their mean. Scripted around the traced tagger, so any length of clip goes in."""

    def __init__(self, tagger: torch.jit.ScriptModule, cfg: LogMelConfig, crop: int):
        super().__init__()
        self.tagger = tagger
        self.register_buffer("window", torch.from_numpy(analysis_window(cfg)))
        self.register_buffer("basis", torch.from_numpy(np.ascontiguousarray(mel_filterbank(cfg).T)))
        self.n_fft, self.hop, self.lead = cfg.n_fft, cfg.hop_length, cfg.lead_samples
        self.min_samples, self.reflect = cfg.min_samples, cfg.center and cfg.pad_mode == "reflect"
        self.power, self.amin, self.float16 = cfg.power, cfg.amin, cfg.dtype == "float16"
        self.crop, self.step = crop, window_hop(crop, OVERLAP)

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform.float()
        if x.dim() == 2:  # (samples, channels) as soundfile reads it: averaged, as fat does
            x = x.mean(1)
        if x.shape[0] < self.min_samples:
            x = nn.functional.pad(x, (0, self.min_samples - x.shape[0]))
        if self.reflect:
            x = nn.functional.pad(x[None, None], (self.lead, self.lead), mode="reflect")[0, 0]
        else:
            x = nn.functional.pad(x, (self.lead, self.lead))
        spectrum = torch.fft.rfft(x.unfold(0, self.n_fft, self.hop) * self.window, dim=1)
        power = spectrum.real.square() + spectrum.imag.square()
        if self.power != 2.0:
            power = power.pow(self.power / 2.0)
        db = (power @ self.basis).clamp_min(self.amin).log10() * 10.0
        return (db.half().float() if self.float16 else db).t()  # (n_mels, frames), as stored

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        mel = self.log_mel(waveform)
        frames = mel.shape[1]
        if frames <= self.crop:  # one window, the clip repeated to fill it
            windows = mel[:, torch.arange(self.crop) % frames][None]
        else:
            starts = list(range(0, frames - self.crop + 1, self.step))
            if starts[-1] != frames - self.crop:
                starts.append(frames - self.crop)
            windows = torch.stack([mel[:, s : s + self.crop] for s in starts])
        return self.tagger(windows).mean(0)


@dataclass(frozen=True)
class ExportSummary:
    model: Path
    manifest: Path
    input_shape: tuple[int, int, int]


def manifest_of(model_file: Path) -> Path:
    """The manifest beside an exported model: its own name + .json (tagger.onnx.json), so two
    exports that differ only in suffix keep a manifest each."""
    return model_file.with_name(model_file.name + ".json")


def export_run(
    run: Path | str, fmt: str, out: Path, checkpoint: str = "best", waveform: bool = False
) -> ExportSummary:
    """Write the run's `checkpoint` to `out` as `fmt`, and its manifest `manifest_of(out)`.
    `waveform` (TorchScript): the model takes a whole clip's waveform (`WaveformTagger`)."""
    if fmt not in FORMATS:
        raise FatError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if waveform and fmt != "torchscript":
        raise FatError("--waveform needs --format torchscript (the window loop is scripted)")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401 - torch's exporter needs it
        except ImportError:
            raise FatError("--format onnx needs onnx: pip install 'fat-audio[onnx]'") from None
    trained = load_trained_model(run, checkpoint)
    if trained.experiment.pad != "wrap":
        raise FatError(
            f"{run}: trained with --pad {trained.experiment.pad}; the exported model has no "
            "mask for the frames past a clip's end, so only --pad wrap runs export"
        )
    tagger = ExportedTagger(trained).eval()
    shape = (1, trained.feature_config.n_mels, trained.experiment.crop_frames)
    example = torch.zeros(shape)
    out = Path(out)
    with warnings.catch_warnings():  # shape branches traced as constants: the crop length is fixed
        warnings.simplefilter("ignore")
        if fmt == "torchscript":
            traced = torch.jit.trace(tagger, example)
            if waveform:
                cfg, crop = trained.feature_config, trained.experiment.crop_frames
                traced = torch.jit.script(WaveformTagger(traced, cfg, crop))
            with atomic_write(out, "wb") as f:
                torch.jit.save(traced, f)
        else:
            partial = out.with_name(f".{out.name}.partial")
            torch.onnx.export(
                tagger, (example,), str(partial), dynamo=False, opset_version=17,
                input_names=["log_mel"], output_names=["probs"],
                dynamic_axes={"log_mel": {0: "batch"}, "probs": {0: "batch"}},
            )  # fmt: skip
            partial.replace(out)
    manifest = manifest_of(out)
    n_classes, rate = len(trained.vocabulary), trained.feature_config.sample_rate
    if waveform:
        io = {
            "input": {"name": "waveform", "shape": ["samples", "(channels)"], "dtype": "float32",
                      "what": f"one whole clip at {rate} Hz in [-1, 1], (samples,) or "
                              "(samples, channels); channels are averaged"},
            "output": {"name": "probs", "shape": [n_classes],
                       "what": "the clip's probabilities (its windows' mean), vocabulary order"},
        }  # fmt: skip
    else:
        io = {
            "input": {"name": "log_mel", "shape": ["batch", shape[1], shape[2]], "dtype": "float32",
                      "what": "raw stored log-mel crops (as `fat featurize` writes them)"},
            "output": {"name": "probs", "shape": ["batch", n_classes],
                       "what": "sigmoid class probabilities, columns in vocabulary order"},
        }  # fmt: skip
    record = {
        "format": fmt,
        "run": str(run),
        "checkpoint": checkpoint,
        "epoch": trained.epoch,
        **io,
        "windows": {
            "crop_frames": shape[2],
            "hop_frames": window_hop(shape[2], OVERLAP),
            "combine": "mean",
        },
        "vocabulary": list(trained.vocabulary),
        "feature_config": trained.feature_config.to_dict(),
    }
    with atomic_write(manifest) as f:
        f.write(json.dumps(record, indent=1) + "\n")
    return ExportSummary(out, manifest, shape)

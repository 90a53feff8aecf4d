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

import torch
from torch import nn

from fat.core.errors import FatError
from fat.core.files import atomic_write
from fat.runs.checkpoint import TrainedModel, load_trained_model

FORMATS = ("torchscript", "onnx")


class ExportedTagger(nn.Module):
    """Raw log-mel crops (B, n_mels, T) -> probabilities (B, C): the run's normalisation, its
    network and a sigmoid, in one module."""

    def __init__(self, trained: TrainedModel):
        super().__init__()
        self.model = trained.model.eval()
        self.register_buffer("mean", torch.from_numpy(trained.normalizer.mean).float()[:, None])
        self.register_buffer("std", torch.from_numpy(trained.normalizer.std).float()[:, None])

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model((log_mel - self.mean) / self.std))


@dataclass(frozen=True)
class ExportSummary:
    model: Path
    manifest: Path
    input_shape: tuple[int, int, int]


def export_run(run: Path | str, fmt: str, out: Path, checkpoint: str = "best") -> ExportSummary:
    """Write the run's `checkpoint` to `out` as `fmt`, and `out` with suffix .json beside it."""
    if fmt not in FORMATS:
        raise FatError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
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
    manifest = out.with_suffix(".json")
    record = {
        "format": fmt,
        "run": str(run),
        "checkpoint": checkpoint,
        "epoch": trained.epoch,
        "input": {"name": "log_mel", "shape": ["batch", shape[1], shape[2]], "dtype": "float32",
                  "what": "raw stored log-mel crops (as `fat featurize` writes them)"},
        "output": {"name": "probs", "shape": ["batch", len(trained.vocabulary)],
                   "what": "sigmoid class probabilities, columns in vocabulary order"},
        "windows": {"crop_frames": shape[2], "hop_frames": shape[2] // 2, "combine": "mean"},
        "vocabulary": list(trained.vocabulary),
        "feature_config": trained.feature_config.to_dict(),
    }  # fmt: skip
    with atomic_write(manifest) as f:
        f.write(json.dumps(record, indent=1) + "\n")
    return ExportSummary(out, manifest, shape)

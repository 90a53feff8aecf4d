"""Weights from a pretrained checkpoint in the PANNs layout (`{"model": state_dict, ...}`,
as the official `Cnn14_mAP=0.431.pth` files are) into a registry network of the same names:
the backbone is taken, the classifier head is left to be trained for the new vocabulary,
and the checkpoint's waveform front end (STFT and mel filterbank buffers) is ignored: fat
computes log-mel once, in `fat featurize --preset panns`."""

import pickle
from pathlib import Path

import torch
from torch import nn

from fat.core.errors import FatError
from fat.core.features import FEATURE_PRESETS

# Buffers of PANNs' torchlibrosa front end, which fat's networks do not have.
FRONT_END = ("spectrogram_extractor.", "logmel_extractor.")
HEADS = ("fc_audioset.", "classifier.", "noisy_classifier.")


def load_tensors(path: Path, what: str) -> object:
    """`torch.load(path, weights_only=True)` on the CPU; a file holding Python objects (which
    could run code) is refused, a damaged or foreign one named, each in one FatError that
    starts with `what`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" in str(e).lower():  # torch names the refused class or function
            raise FatError(
                f"{what}: refused: it holds Python objects beyond tensors and plain data, "
                "which could run code when loaded (files load with weights_only=True)"
            ) from None
        raise FatError(
            f"{what}: not a readable checkpoint (damaged, or not a torch file)"
        ) from None
    except Exception as e:  # torch raises many types for a damaged or foreign file
        raise FatError(f"{what}: not a readable checkpoint ({type(e).__name__})") from None


def read_pretrained(path: Path | str) -> dict[str, torch.Tensor]:
    """The state dict of a PANNs-layout checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FatError(f"--pretrained {path}: no such file")
    state = load_tensors(path, f"--pretrained {path}")
    weights = state.get("model", state) if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not all(torch.is_tensor(v) for v in weights.values()):
        raise FatError(f'--pretrained {path}: expected {{"model": state_dict}} (PANNs layout)')
    return weights


def load_backbone(model: nn.Module, path: Path | str) -> int:
    """Copy every backbone weight of the checkpoint at `path` into `model`; returns how many
    tensors were taken. Any weight the model lacks, any model weight the checkpoint lacks and
    any shape that differs is named in one FatError (the front end and the heads excepted)."""
    weights = read_pretrained(path)
    own = model.state_dict()
    backbone = {k: v for k, v in weights.items() if not k.startswith(FRONT_END + HEADS)}
    unexpected = sorted(set(backbone) - set(own))
    missing = sorted(k for k in own if k not in backbone and not k.startswith(HEADS))
    shapes = sorted(
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in backbone.items()
        if k in own and v.shape != own[k].shape
    )
    if unexpected or missing or shapes:
        parts = [
            f"{what}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
            for what, keys in (
                ("not in the model", unexpected),
                ("not in the checkpoint", missing),
                ("other shapes (checkpoint vs model)", shapes),
            )
            if keys
        ]
        raise FatError(f"--pretrained {path}: does not fit this arch; " + "; ".join(parts))
    model.load_state_dict(backbone, strict=False)
    return len(backbone)


# The front end PANNs networks were trained on (their README and checkpoints' filterbank).
# The settings of the "panns" preset that a PANNs network's filters depend on.
PANNS_FEATURES = ("sample_rate", "n_fft", "hop_length", "n_mels", "fmin", "fmax", "pad_mode")


def front_end_mismatch(path: Path | str, feature_config) -> str | None:
    """Why the store's features are not what a PANNs checkpoint's network was trained on
    (checkpoints that carry PANNs' log-mel front end), or None."""
    if not any(k.startswith(FRONT_END) for k in read_pretrained(path)):
        return None
    panns = FEATURE_PRESETS["panns"]
    differ = [
        f"{k} {getattr(feature_config, k)} vs {getattr(panns, k)}"
        for k in PANNS_FEATURES
        if getattr(feature_config, k) != getattr(panns, k)
    ]
    return ", ".join(differ) or None

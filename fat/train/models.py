"""Tagging models: blocks and networks in one file, and a registry (`create_model`)."""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from fat.errors import FatError

_REGISTRY: dict[str, Callable[..., "TaggingModel"]] = {}


def register_model(name: str) -> Callable:
    def wrap(factory: Callable[..., "TaggingModel"]) -> Callable[..., "TaggingModel"]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(
    name: str, n_mels: int, n_classes: int, width: float = 1.0, **kw
) -> "TaggingModel":
    if name not in _REGISTRY:
        raise FatError(f"unknown arch {name!r}; choose from {', '.join(list_models())}")
    try:
        model = _REGISTRY[name](n_mels=n_mels, n_classes=n_classes, width=width, **kw)
    except TypeError as e:
        raise FatError(f"arch {name!r}: {e}") from None
    model.arch = name
    return model


def scaled(channels: int, width: float) -> int:
    return max(4, int(round(channels * width)))


def prior_bias(layer: nn.Linear, prior: float = 0.02) -> None:
    """Start every class at a small probability, as sparse multi-hot targets are: otherwise the
    first hundreds of steps only learn to push 80 logits down from p = 0.5."""
    nn.init.constant_(layer.bias, float(torch.logit(torch.tensor(prior))))


class TaggingModel(nn.Module):
    """(B, n_mels, T) normalised log-mel -> clip logits (B, n_classes)."""

    arch: str = ""

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_frames(x)[0]

    def forward_frames(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def layer_groups(self) -> list[tuple[str, nn.Module]]:
        raise NotImplementedError


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then 2x2 average pooling (the FAT2019 baseline block)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )
        for m in self.layers:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(x)
        # Pool only axes still longer than 1, so short inputs survive four blocks.
        return nn.functional.avg_pool2d(x, (2 if x.shape[2] > 1 else 1, 2 if x.shape[3] > 1 else 1))


class BaselineCNN(TaggingModel):
    """The FSDKaggle2019 baseline: 4 conv blocks (64-128-256-512 x width), mean over
    frequency, max over time, then a small MLP head."""

    def __init__(self, n_mels: int, n_classes: int, width: float = 1.0):
        super().__init__()
        chans = [scaled(c, width) for c in (64, 128, 256, 512)]
        self.blocks = nn.ModuleList(
            ConvBlock(c_in, c_out) for c_in, c_out in zip([1, *chans[:-1]], chans, strict=True)
        )
        self.head = nn.Sequential(
            nn.Dropout(0.2),
            nn.Linear(chans[-1], chans[-1]),
            nn.PReLU(),
            nn.BatchNorm1d(chans[-1]),
            nn.Dropout(0.1),
            nn.Linear(chans[-1], n_classes),
        )
        prior_bias(self.head[-1])

    def forward_frames(self, x: Tensor) -> tuple[Tensor, None]:
        x = x[:, None]
        for block in self.blocks:
            x = block(x)
        x = x.mean(dim=2).amax(dim=2)
        return self.head(x), None

    def layer_groups(self) -> list[tuple[str, nn.Module]]:
        return [(f"block{i + 1}", b) for i, b in enumerate(self.blocks)] + [("head", self.head)]


@register_model("cnn")
def cnn(n_mels: int, n_classes: int, width: float = 1.0) -> BaselineCNN:
    return BaselineCNN(n_mels, n_classes, width)

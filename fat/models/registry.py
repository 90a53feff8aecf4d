"""The model registry: `create_model(name, n_mels, n_classes, width, **settings)`.

An entry is a network class plus preset settings; a network's own keyword arguments (beyond
n_mels, n_classes and width) are its settings, listed by `model_settings` and set from the
command line with `fat train --model-arg key=value`.
"""

import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from fat.core.errors import FatError

_FIXED = ("self", "n_mels", "n_classes", "width")


@dataclass(frozen=True)
class ModelEntry:
    network: type[nn.Module]
    description: str
    preset: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """Every setting the network takes, with this entry's default for it."""
        params = inspect.signature(self.network.__init__).parameters.values()
        defaults = {p.name: p.default for p in params if p.name not in _FIXED}
        return {**defaults, **self.preset}


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, network: type[nn.Module], description: str, **preset: Any) -> None:
    """Make `network` (with `preset` settings) available as `name`."""
    _REGISTRY[name] = ModelEntry(network, description, preset)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise FatError(f"unknown arch {name!r}; choose from {', '.join(list_models())}")
    return _REGISTRY[name]


def model_settings(name: str) -> dict[str, Any]:
    return model_entry(name).settings()


def unknown_settings(name: str, kw: dict[str, Any]) -> str | None:
    """Why `kw` are not settings of the network registered as `name`, or None when they are."""
    if name not in _REGISTRY:
        return f"unknown arch {name!r}; choose from {', '.join(list_models())}"
    known = _REGISTRY[name].settings()
    unknown = sorted(set(kw) - set(known))
    if not unknown:
        return None
    have = ", ".join(f"{k}={v!r}" for k, v in known.items()) or "none"
    return f"arch {name!r} has no setting {', '.join(unknown)} (its settings: {have})"


def create_model(name: str, n_mels: int, n_classes: int, width: float = 1.0, **kw: Any):
    """The network registered as `name`; a setting it does not take is a FatError naming those
    it does."""
    reason = unknown_settings(name, kw)
    if reason:
        raise FatError(reason)
    entry = model_entry(name)
    try:
        return entry.network(
            n_mels=n_mels, n_classes=n_classes, width=width, **{**entry.preset, **kw}
        )
    except (TypeError, ValueError) as e:
        raise FatError(f"arch {name!r}: {e}") from None

"""Targets and losses for noisy labels."""

import torch


def lsoft_targets(
    labels: torch.Tensor, logits: torch.Tensor, noisy: torch.Tensor, beta: float
) -> torch.Tensor:
    """Lsoft (soft bootstrapping): a noisy clip's target becomes beta * label +
    (1 - beta) * the model's own probability, so labels the model confidently disagrees with
    weigh less. `noisy` (B,) is 1 for noisy clips, 0 for curated, in between for mixup blends;
    curated targets stay the labels. The prediction is detached: it is a target, not a path."""
    blend = (noisy * (1 - beta))[:, None]
    return (1 - blend) * labels + blend * torch.sigmoid(logits).detach()

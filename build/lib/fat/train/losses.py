"""Targets and losses for noisy labels."""

import torch
import torch.nn.functional as F

from fat.models import TrainingOutputs


def lsoft_targets(
    labels: torch.Tensor, logits: torch.Tensor, noisy: torch.Tensor, beta: float
) -> torch.Tensor:
    """Lsoft (soft bootstrapping): a noisy clip's target becomes beta * label +
    (1 - beta) * the model's own probability, so labels the model confidently disagrees with
    weigh less. `noisy` (B,) is 1 for noisy clips, 0 for curated, in between for mixup blends;
    curated targets stay the labels. The prediction is detached: it is a target, not a path."""
    blend = (noisy * (1 - beta))[:, None]
    return (1 - blend) * labels + blend * torch.sigmoid(logits).detach()


def training_loss(
    out: TrainingOutputs, target: torch.Tensor, noisy: torch.Tensor, aux_weights: tuple[float, ...]
) -> torch.Tensor:
    """Binary cross-entropy of the clip logits, plus each auxiliary head's weighted by
    `aux_weights`. With a noisy-clip head, a clip's main loss goes through that head in
    proportion to its noisy share (`noisy`, 0..1 for mixup blends) and through the main head
    for the rest."""
    logits = out.logits.float()
    if out.noisy is None:
        loss = F.binary_cross_entropy_with_logits(logits, target)
    else:
        per_clip = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1)
        via_noisy = F.binary_cross_entropy_with_logits(
            out.noisy.float(), target, reduction="none"
        ).mean(1)
        loss = ((1 - noisy) * per_clip + noisy * via_noisy).mean()
    for weight, aux in zip(aux_weights, out.aux, strict=True):
        loss = loss + weight * F.binary_cross_entropy_with_logits(aux.float(), target)
    return loss

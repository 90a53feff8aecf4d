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


def per_clip_loss(logits: torch.Tensor, target: torch.Tensor, single_label: bool) -> torch.Tensor:
    """(B,) losses: the mean binary cross-entropy over classes, or with `single_label` the
    cross-entropy of a softmax over classes against the target shares (a mixup blend of two
    labels, or the union a concat mixer makes, shared out so that each clip's sum is 1)."""
    if not single_label:
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1)
    shares = target / target.sum(dim=1, keepdim=True).clamp_min(1e-7)
    return -(shares * F.log_softmax(logits, dim=1)).sum(dim=1)


def training_loss(
    out: TrainingOutputs,
    target: torch.Tensor,
    noisy: torch.Tensor,
    aux_weights: tuple[float, ...],
    single_label: bool = False,
) -> torch.Tensor:
    """The clip logits' loss (`per_clip_loss`), plus each auxiliary head's weighted by
    `aux_weights`. With a noisy-clip head, a clip's main loss goes through that head in
    proportion to its noisy share (`noisy`, 0..1 for mixup blends) and through the main head
    for the rest."""
    logits = out.logits.float()
    if out.noisy is None:
        loss = head_loss(logits, target, single_label)
    else:
        per_clip = per_clip_loss(logits, target, single_label)
        via_noisy = per_clip_loss(out.noisy.float(), target, single_label)
        loss = ((1 - noisy) * per_clip + noisy * via_noisy).mean()
    for weight, aux in zip(aux_weights, out.aux, strict=True):
        loss = loss + weight * head_loss(aux.float(), target, single_label)
    return loss


def head_loss(logits: torch.Tensor, target: torch.Tensor, single_label: bool) -> torch.Tensor:
    """The batch's mean loss of one head (BCE over every clip and class in one reduction, as
    the runs before softmax heads summed it)."""
    if single_label:
        return per_clip_loss(logits, target, True).mean()
    return F.binary_cross_entropy_with_logits(logits, target)

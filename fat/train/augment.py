"""Batch augmentation on the training device: SpecAugment-style masks and mixup.

Random draws come from a torch.Generator seeded by (seed, epoch, step), so a resumed run
replays the same augmentation, whatever device the batch lives on.
"""

import numpy as np
import torch


def step_generator(*key: int) -> torch.Generator:
    """A generator seeded by a tuple such as (seed, epoch, step, rank)."""
    state = np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


def mask_spans(
    x: torch.Tensor, axis: int, count: int, max_width: int, gen: torch.Generator
) -> torch.Tensor:
    """Zero `count` random spans of up to `max_width` along `axis` (1: mel, 2: time) of each
    sample of x (B, mels, T). Zero is the training mean after normalisation."""
    if count <= 0 or max_width <= 0:
        return x
    batch, size = x.shape[0], x.shape[axis]
    width = torch.randint(0, max_width + 1, (batch, count), generator=gen)
    start = (torch.rand(batch, count, generator=gen) * (size - width + 1).clamp(min=1)).long()
    pos = torch.arange(size)
    hit = ((pos >= start[..., None]) & (pos < (start + width)[..., None])).any(dim=1)
    shape = (batch, size, 1) if axis == 1 else (batch, 1, size)
    return x.masked_fill(hit.view(shape).to(x.device), 0.0)


def mixup(
    x: torch.Tensor, y: torch.Tensor, alpha: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Blend each sample with a random partner: lam*a + (1-lam)*b for inputs and targets.
    Returns (x, y, partner index, lam) so per-sample weights can be mixed the same way."""
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    # torch's Beta sampler ignores generators; numpy's, seeded from this one, does not.
    lam = float(
        np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen))).beta(alpha, alpha)
    )
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm], perm, lam

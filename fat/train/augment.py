"""Batch augmentation on the training device: SpecAugment-style masks and the mixers
(mixup, SigmoidConcat-style concatenation, SpecMix).

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


def resized_crop(x: torch.Tensor, min_scale: float, gen: torch.Generator) -> torch.Tensor:
    """Each sample of x (B, mels, T) zoomed to a random window of itself, `min_scale` to all
    of each axis, stretched back to the full size (bilinear): random resized crops, on
    whatever device x lives."""
    if min_scale >= 1:
        return x
    batch = x.shape[0]
    scale = min_scale + (1 - min_scale) * torch.rand(batch, 2, generator=gen)  # (time, mel)
    shift = (torch.rand(batch, 2, generator=gen) * 2 - 1) * (1 - scale)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale[:, 0], scale[:, 1]
    theta[:, :, 2] = shift
    grid = torch.nn.functional.affine_grid(theta, (batch, 1, *x.shape[1:]), align_corners=False)
    out = torch.nn.functional.grid_sample(
        x[:, None].float(), grid.to(x.device), mode="bilinear", align_corners=False
    )
    return out[:, 0].to(x.dtype)


Mixed = tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]


def _partner_and_share(x: torch.Tensor, alpha: float, gen: torch.Generator):
    """A random partner for each sample and lam ~ Beta(alpha, alpha), the first's share."""
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    # torch's Beta sampler ignores generators; numpy's, seeded from this one, does not.
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen)))
    return perm, float(rng.beta(alpha, alpha)), rng


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, gen: torch.Generator) -> Mixed:
    """Blend each sample with a random partner: lam*a + (1-lam)*b for inputs and targets.
    Returns (x, y, partner index, lam) so per-sample weights can be mixed the same way."""
    perm, lam, _ = _partner_and_share(x, alpha, gen)
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm], perm, lam


def concat(x: torch.Tensor, y: torch.Tensor, alpha: float, gen: torch.Generator) -> Mixed:
    """Each crop's first half followed by its partner's second half, joined by a sigmoid ramp
    of random steepness (from -r to r over the crop, r in 3..12), targets the union of both
    label sets: each sound keeps about half of the crop, so both classes are really there.
    `alpha` plays no part. (A cut at a Beta(alpha, alpha) share, the first version, gave the
    union to crops where the partner kept a sliver of frames, and lost to mixup.)"""
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    radius = float(torch.randint(3, 13, (1,), generator=gen))
    ramp = torch.sigmoid(torch.linspace(-radius, radius, x.shape[2], device=x.device))
    mixed = (1 - ramp) * x + ramp * x[perm]
    return mixed.to(x.dtype), torch.maximum(y, y[perm]), perm, 0.5


def specmix(x: torch.Tensor, y: torch.Tensor, alpha: float, gen: torch.Generator) -> Mixed:
    """One band of frames and one band of mel bins of the partner pasted over each crop,
    their widths drawn so the partner's share of the area is about 1 - lam; targets mixed by
    the exact area (SpecMix)."""
    perm, lam, rng = _partner_and_share(x, alpha, gen)
    mels, frames = x.shape[1], x.shape[2]
    # Two bands covering a share s each of their axis cover 2s - s^2 of the area.
    s = 1 - np.sqrt(lam)
    t_width, f_width = int(round(s * frames)), int(round(s * mels))
    t0 = int(rng.integers(0, frames - t_width + 1))
    f0 = int(rng.integers(0, mels - f_width + 1))
    mask = torch.zeros(mels, frames, dtype=torch.bool, device=x.device)
    mask[:, t0 : t0 + t_width] = True
    mask[f0 : f0 + f_width, :] = True
    share = 1 - float(mask.float().mean())
    mixed = torch.where(mask, x[perm], x)
    return mixed, share * y + (1 - share) * y[perm], perm, share


# By the `mixer` setting's names (runs.settings.MIXERS; a test keeps the two equal).
MIXER_FUNCTIONS = {"mixup": mixup, "concat": concat, "specmix": specmix}

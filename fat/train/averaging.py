"""The exponential moving average of a model's weights, debiased: each step's share is
(1 - decay) / (1 - decay^n) at the n-th step averaged, so the average weighs the steps it
has seen and nothing else. A plain EMA starts from the first weights and keeps decay^n of
them: at 0.999 after 2,000 steps, 13.5% of an almost untrained network."""

from collections.abc import Callable

import torch


def debiased_ema(decay: float) -> Callable[[list, list, torch.Tensor], None]:
    """`multi_avg_fn` for torch.optim.swa_utils.AveragedModel: updates the averaged tensors
    in place; `averaged_before` is how many steps the average holds already (saved with it,
    so a resumed run continues the same weights)."""

    @torch.no_grad()
    def update(averaged: list, current: list, averaged_before: torch.Tensor) -> None:
        n = int(averaged_before) + 1
        share = (1 - decay) / (1 - decay**n)
        if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
            torch._foreach_lerp_(averaged, current, share)
        else:  # integer buffers (batch-norm step counts) follow the model
            for kept, now in zip(averaged, current, strict=True):
                kept.copy_(now)

    return update

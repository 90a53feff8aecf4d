"""Learning-rate schedules as pure functions of the step, so resuming needs only the step."""

import math


def lr_at(
    schedule: str,
    step: int,
    total_steps: int,
    steps_per_epoch: int,
    lr: float,
    lr_min: float,
    cycle_epochs: float = 4.0,
) -> float:
    """LR for optimizer step `step` (0-based) of `total_steps`.

    cyclic: the seed's triangle between lr_min and lr, one period every `cycle_epochs`
    (starts low, peaks mid-period). onecycle: linear warm-up over the first 30% from lr/25 to
    lr, then cosine down to lr_min. cosine: from lr to lr_min over the run.
    """
    progress = step / max(total_steps - 1, 1)
    if schedule == "constant":
        return lr
    if schedule == "cyclic":
        period = max(cycle_epochs * steps_per_epoch, 2)
        phase = (step % period) / period
        return lr_min + (lr - lr_min) * (1 - abs(2 * phase - 1))
    if schedule == "cosine":
        return lr_min + (lr - lr_min) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "onecycle":
        warm = 0.3
        if progress < warm:
            return lr / 25 + (lr - lr / 25) * progress / warm
        rest = (progress - warm) / (1 - warm)
        return lr_min + (lr - lr_min) * 0.5 * (1 + math.cos(math.pi * rest))
    raise ValueError(f"unknown schedule {schedule!r}")

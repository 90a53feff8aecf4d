"""The learning rate as a pure function of the step, so resuming needs only the step."""

import math

from fat.runs.settings import ExperimentConfig


def lr_at(experiment: ExperimentConfig, step: int, steps_per_epoch: int) -> float:
    """LR for optimizer step `step` (0-based) of a run of `experiment.epochs` epochs.

    constant: lr. cyclic: a triangle between lr_min and lr, one period every `cycle_epochs`
    (starts low, peaks mid-period). onecycle: linear warm-up over the first 30% from lr/25 to
    lr, then cosine down to lr_min. cosine: from lr to lr_min over the run. cosine-restarts:
    that cosine once every `cycle_epochs`, back to lr at each restart (a snapshot is saved at
    the end of each cycle). From `swa_start` on, a non-zero `swa_lr` replaces the schedule.
    """
    e = experiment
    if e.swa_start and e.swa_lr > 0 and step // steps_per_epoch + 1 >= e.swa_start:
        return e.swa_lr
    total_steps = steps_per_epoch * e.epochs
    progress = step / max(total_steps - 1, 1)
    lr, lr_min = e.lr, min(e.lr_min, e.lr)  # a peak below lr_min: the schedule never rises
    if e.schedule == "constant":
        return lr
    if e.schedule == "cyclic":
        period = max(e.cycle_epochs * steps_per_epoch, 2)
        phase = (step % period) / period
        return lr_min + (lr - lr_min) * (1 - abs(2 * phase - 1))
    if e.schedule == "cosine":
        return lr_min + (lr - lr_min) * 0.5 * (1 + math.cos(math.pi * progress))
    if e.schedule == "cosine-restarts":
        period = max(round(e.cycle_epochs * steps_per_epoch), 2)
        phase = (step % period) / (period - 1)
        return lr_min + (lr - lr_min) * 0.5 * (1 + math.cos(math.pi * phase))
    if e.schedule == "onecycle":
        warm = 0.3
        if progress < warm:
            return lr / 25 + (lr - lr / 25) * progress / warm
        rest = (progress - warm) / (1 - warm)
        return lr_min + (lr - lr_min) * 0.5 * (1 + math.cos(math.pi * rest))
    raise ValueError(f"unknown schedule {e.schedule!r}")

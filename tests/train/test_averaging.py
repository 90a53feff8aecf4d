"""The debiased moving average of the weights: each step it has seen weighs what the EMA
formula gives it, normalised, and the first weights do not linger."""

import numpy as np
import pytest
import torch

from fat.train.averaging import debiased_ema


def averaged(decay: float, values: list[float], multi_avg_fn) -> float:
    model = torch.nn.Linear(1, 1, bias=False)
    average = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=multi_avg_fn)
    for v in values:  # one optimiser step each
        with torch.no_grad():
            model.weight.fill_(v)
        average.update_parameters(model)
    return average.module.weight.item()


def test_each_step_weighs_its_share_of_the_steps_seen_and_the_first_no_more():
    decay, values = 0.9, [100.0] + [float(v) for v in np.linspace(0, 1, 49)]
    n = len(values)
    shares = (1 - decay) * decay ** np.arange(n - 1, -1, -1) / (1 - decay**n)
    assert averaged(decay, values, debiased_ema(decay)) == pytest.approx(shares @ values, 1e-5)
    plain = averaged(decay, values, torch.optim.swa_utils.get_ema_multi_avg_fn(decay))
    assert plain == pytest.approx(decay ** (n - 1) * 100 + (1 - decay) * (
        decay ** np.arange(n - 2, -1, -1) @ values[1:]), 1e-5)  # fmt: skip
    # the plain EMA keeps decay^(n-1) of the first weights
    assert averaged(decay, [3.0] * 5, debiased_ema(decay)) == pytest.approx(3.0)


def test_batch_norm_buffers_are_averaged_and_its_step_count_follows_the_model():
    model = torch.nn.BatchNorm1d(2)
    average = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=debiased_ema(0.5), use_buffers=True
    )
    for mean in (1.0, 3.0):
        model.running_mean.fill_(mean)
        model.num_batches_tracked += 1
        average.update_parameters(model)
    # shares (1 - 0.5) / (1 - 0.25) = 2/3 for the second step, 1/3 for the first
    assert torch.allclose(average.module.running_mean, torch.full((2,), 1 / 3 + 2.0))
    assert int(average.module.num_batches_tracked) == 2

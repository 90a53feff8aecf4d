"""The reference every recipe must beat: a logistic regression on whole-clip log-mel
statistics (per-band mean and standard deviation), trained on a store's curated clips and
scored on a labelled split. No crops, no convolution, no augmentation.

    .venv/bin/python experiments/linear_reference.py STORE [--split test] [--seed 0]
"""

import argparse

import numpy as np
import torch

from fat.core.holdout import holdout_mask
from fat.core.metrics import lwlrap
from fat.store import open_store


def clip_statistics(split) -> np.ndarray:
    """(clips, 2 x mels): each clip's per-band mean and standard deviation."""
    rows = []
    for i in range(split.n_clips):
        frames = split.read(i).astype(np.float32)  # (mels, T)
        rows.append(np.concatenate([frames.mean(axis=1), frames.std(axis=1)]))
    return np.stack(rows)


def fit(x: np.ndarray, y: np.ndarray, weight_decay: float, seed: int) -> torch.nn.Linear:
    torch.manual_seed(seed)
    model = torch.nn.Linear(x.shape[1], y.shape[1])
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=500, line_search_fn="strong_wolfe")
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xt), yt)
        loss = loss + weight_decay * model.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store")
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with open_store(args.store) as store:
        curated, scored = store.split("curated"), store.split(args.split)
        x, y = clip_statistics(curated), curated.labels.astype(np.float32)
        x_test, y_test = clip_statistics(scored), scored.labels.astype(np.float32)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    x, x_test = (x - mean) / std, (x_test - mean) / std
    # The weight decay chosen on the same 20% hold-out `fat train` validates on.
    val = holdout_mask(y, 0.2, args.seed, 0)

    def held_out_lwlrap(wd: float) -> float:
        scores = fit(x[~val], y[~val], wd, args.seed)(torch.from_numpy(x[val]))
        return lwlrap(y[val], scores.detach().numpy())

    best = max((held_out_lwlrap(wd), wd) for wd in (1e-4, 1e-3, 1e-2, 1e-1))
    model = fit(x, y, best[1], args.seed)
    scores = model(torch.from_numpy(x_test)).detach().numpy()
    print(
        f"logistic regression on clip mean+std log-mel: weight decay {best[1]:g} "
        f"(hold-out lwlrap {best[0]:.4f}); {args.split} lwlrap {lwlrap(y_test, scores):.4f}"
    )


if __name__ == "__main__":
    main()

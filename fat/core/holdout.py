"""Which clips of a training split validate: a stratified hold-out fixed by the seed."""

import numpy as np


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation clips: about `fraction` of the clips of every class.

    Greedy from the rarest class up, so rare classes get their share before common ones fill
    the quota; multi-label clips count for all their classes. Fixed by `seed`.
    """
    n = len(labels)
    val = np.zeros(n, bool)
    if fraction <= 0 or n < 2:
        return val
    rng = np.random.default_rng([seed, 7919])
    order = rng.permutation(n)
    assigned = np.zeros(n, bool)
    counts = labels.sum(axis=0)
    for c in np.argsort(counts, kind="stable"):
        if counts[c] == 0:
            continue
        members = order[labels[order, c] > 0]
        target = int(round(fraction * len(members)))
        have = int(val[members].sum())
        for i in members[~assigned[members]]:
            val[i] = have < target
            have += int(val[i])
            assigned[i] = True
    rest = order[~assigned]
    val[rest[: int(round(fraction * len(rest)))]] = True
    if val.all():
        val[order[0]] = False
    return val


def holdout_mask(labels: np.ndarray, val_fraction: float, seed: int, position: int) -> np.ndarray:
    """Validation clips of the `position`-th training split of a run: the one rule shared by the
    trainer and by evaluating the run later."""
    return stratified_holdout(labels, val_fraction, seed + position)

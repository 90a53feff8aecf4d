"""Which clips of a training split validate: a stratified hold-out, or one fold of a
stratified K-fold cut, fixed by the seed."""

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


def holdout_mask(
    labels: np.ndarray,
    val_fraction: float,
    seed: int,
    position: int,
    folds: int = 0,
    fold: int = 0,
    fold_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Validation clips of the `position`-th training split of a run: the one rule shared by the
    trainer and by evaluating the run later. With `folds`, the first split's fold `fold` of a
    K-fold cut validates and the other splits train whole (cross-validation); `fold_ids`
    (each clip's fold as the data set ships it) replace the stratified cut: the `fold`-th of
    their sorted values validates."""
    if folds:
        if position:
            return np.zeros(len(labels), bool)
        if fold_ids is not None:
            return np.asarray(fold_ids) == dataset_fold_values(fold_ids)[fold]
        return stratified_folds(labels, folds, seed) == fold
    return stratified_holdout(labels, val_fraction, seed + position)


def dataset_fold_values(fold_ids: np.ndarray) -> list:
    """The folds a data set ships, in order (ESC-50: 1..5); fold k of a run is the k-th."""
    return sorted(set(np.asarray(fold_ids).tolist()))


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of every clip, stratified for multi-label data by iterative
    stratification (Sechidis, Tsoumakas and Vlahavas, 2011): the rarest label's clips are
    placed first, each into the fold that most lacks that label (ties: the fold most short
    of clips, then at random), so every class spreads over the folds as evenly as its count
    allows. Fixed by `seed`."""
    labels = np.asarray(labels) > 0
    n = len(labels)
    if folds < 2 or folds > n:
        raise ValueError(f"{folds} folds for {n} clips: need 2 <= folds <= clips")
    rng = np.random.default_rng([seed, 104729])
    want_clips = np.full(folds, n / folds)
    want_labels = np.outer(np.full(folds, 1 / folds), labels.sum(axis=0))  # (folds, classes)
    fold = np.full(n, -1)
    left = labels.copy()
    while left.any():
        counts = left.sum(axis=0)
        rarest = np.flatnonzero(counts == counts[counts > 0].min())
        c = int(rng.choice(rarest))
        for i in rng.permutation(np.flatnonzero(left[:, c])):
            need = want_labels[:, c]
            best = np.flatnonzero(need == need.max())
            if len(best) > 1:
                best = best[want_clips[best] == want_clips[best].max()]
            j = int(rng.choice(best))
            fold[i] = j
            want_labels[j] -= labels[i]
            want_clips[j] -= 1
            left[i] = False
    for i in rng.permutation(np.flatnonzero(fold < 0)):  # clips without labels
        best = np.flatnonzero(want_clips == want_clips.max())
        j = int(rng.choice(best))
        fold[i] = j
        want_clips[j] -= 1
    return fold

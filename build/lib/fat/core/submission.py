"""Kaggle's submission format, the one file of clip probabilities every tool writes and
reads: `fname`, then one column per class in vocabulary order, one row per clip."""

import csv
from pathlib import Path

import numpy as np

from fat.core.errors import FatError
from fat.core.files import atomic_write


def write_submission(path: Path, clip_ids: list[str], vocabulary, probs: np.ndarray) -> None:
    with atomic_write(Path(path), newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["fname", *vocabulary])
        for clip_id, row in zip(clip_ids, probs, strict=True):
            writer.writerow([clip_id, *(f"{p:.6f}" for p in row)])


def read_submission(path: Path) -> tuple[list[str], tuple[str, ...], np.ndarray]:
    """(clip ids, vocabulary, probabilities (n, classes)); FatError naming the file and the
    first bad row."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as error:
        raise FatError(f"{path}: cannot read ({error})") from None
    if not rows or not rows[0] or rows[0][0] != "fname" or len(rows[0]) < 2:
        raise FatError(f"{path}: not a submission file (header fname, then the classes)")
    header, probs = rows[0], np.empty((len(rows) - 1, len(rows[0]) - 1), np.float64)
    for k, row in enumerate(rows[1:]):
        try:
            if len(row) != len(header):
                raise ValueError(f"{len(row)} columns, the header has {len(header)}")
            probs[k] = [float(v) for v in row[1:]]
        except ValueError as error:
            raise FatError(f"{path}: row {k + 2}: {error}") from None
    return [r[0] for r in rows[1:]], tuple(header[1:]), probs

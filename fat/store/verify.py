"""`verify_split`: is a split's index consistent, and do its frames still match their checksums?"""

from collections.abc import Callable

import numpy as np

from fat.core.errors import FatError, one_line
from fat.core.ids import check_clip_id
from fat.store.layout import checksum
from fat.store.reader import Split

_LISTED = 20  # problems of one kind listed per split; more only repeat the point


def verify_split(
    split: Split, check_data: bool = True, progress: Callable[[int], None] | None = None
) -> tuple[list[str], list[str]]:
    """(problems, notes). Problems make a store invalid; notes are worth knowing only.
    `progress` is called with the number of frames checked since its last call."""
    where = f"split {split.name}"
    problems = _index_problems(split, where)
    notes = [f"{where}: no clips"] if split.n_clips == 0 else []
    if split.n_clips and split.stats is None:
        notes.append(f"{where}: mel mean/std not computed for the current {split.n_clips} clips")
    if check_data and not problems and split.n_clips:
        try:
            problems += _data_problems(split, progress)
        except FatError as e:
            problems.append(f"{where}: frames unreadable ({e})")
        except Exception as e:  # noqa: BLE001 - damaged chunks fail in format-specific ways
            problems.append(f"{where}: frames unreadable ({type(e).__name__}: {one_line(e)})")
    return problems, notes


def _index_problems(split: Split, where: str) -> list[str]:
    problems: list[str] = []
    n, cfg, ids = split.n_clips, split.feature_config, split.clip_ids
    expected = np.concatenate([[0], np.cumsum(split.lengths)[:-1]]) if n else np.zeros(0)
    for i in np.flatnonzero(split.offsets != expected)[:_LISTED]:
        problems.append(
            f"{where}: clip {i} ({ids[i]}) offset {split.offsets[i]}, expected {expected[i]}"
        )
    if int(split.lengths.sum()) != split.n_frames:
        problems.append(
            f"{where}: clip lengths sum to {int(split.lengths.sum())} "
            f"but {split.n_frames} frames are committed"
        )
    rows, *row_shape = split.frames_shape
    if rows < split.n_frames:
        problems.append(
            f"{where}: frames array has {rows} rows, fewer than the {split.n_frames} committed"
        )
    if tuple(row_shape) != (cfg.n_mels,):
        problems.append(f"{where}: frames rows {tuple(row_shape)} != n_mels {cfg.n_mels}")
    for i in np.flatnonzero(split.lengths <= 0)[:_LISTED]:
        problems.append(f"{where}: clip {ids[i]} has {split.lengths[i]} frames")
    seen: set[str] = set()
    for clip_id in ids:
        reason = check_clip_id(clip_id)
        if reason:
            problems.append(f"{where}: {reason}")
        elif clip_id in seen:
            problems.append(f"{where}: clip id {clip_id} appears twice")
        seen.add(clip_id)
    if split.labels.shape[1:] != (len(split.vocabulary),):
        problems.append(
            f"{where}: labels have {split.labels.shape[1:]} columns, "
            f"vocabulary has {len(split.vocabulary)}"
        )
    if n:
        for i in np.flatnonzero((split.labels > 1).any(axis=1))[:_LISTED]:
            problems.append(f"{where}: clip {ids[i]} has label values outside 0/1")
        if split.meta.labelled:
            for i in np.flatnonzero(split.labels.sum(axis=1) == 0)[:_LISTED]:
                problems.append(f"{where}: clip {ids[i]} has no label")
    if split.stats is not None and not all(np.isfinite(s).all() for s in split.stats):
        problems.append(f"{where}: mel mean/std are not finite")
    return problems


def _data_problems(split: Split, progress: Callable[[int], None] | None) -> list[str]:
    """Recompute every clip's checksum and look for non-finite values, reading sequentially."""
    problems: list[str] = []
    offsets, lengths = split.offsets, split.lengths
    clip = 0
    for lo, block in split.iter_blocks():
        hi = lo + len(block)
        while clip < split.n_clips and offsets[clip] + lengths[clip] <= hi:
            a = offsets[clip] - lo
            if a >= 0:
                frames = block[a : a + lengths[clip]]
            else:  # the clip straddles the block boundary: read it whole
                frames = split.read_rows(offsets[clip], offsets[clip] + lengths[clip])
            name = f"split {split.name}: clip {split.clip_ids[clip]}"
            if not np.isfinite(frames).all():
                problems.append(f"{name}: non-finite values")
            if checksum(frames) != int(split.index.checksums[clip]):
                problems.append(f"{name}: checksum mismatch (data changed since written)")
            clip += 1
        if progress:
            progress(len(block))
    return problems

"""What is in a store, as text and rows: `fat store info` and `fat store ls`."""

from fat.core.errors import FatError
from fat.store.reader import Split
from fat.store.store import FeatureStore, SplitUnreadable


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def describe_store(store: FeatureStore) -> tuple[str, list[str]]:
    """Splits, clips, hours, frames, dtype, chunking, size on disk and feature config, and the
    splits that could not be read (each with the reason; the text shows them too)."""
    unreadable = []
    out = [
        f"store    {store.path}",
        f"format   {store.format}",
        f"on disk  {human_bytes(store.disk_usage())}",
    ]
    names = store.splits()
    if not names:
        out.append("splits   none")
    for name in names:
        try:
            split = store.split(name)
        except SplitUnreadable as e:
            unreadable.append(str(e))
            out += ["", f"split {name}", f"  unreadable: {e.reason}"]
            continue
        cfg = split.feature_config
        chunks = split.frames_chunks
        out += [
            "",
            f"split {name}",
            f"  clips      {split.n_clips}",
            f"  hours      {split.hours:.3f}",
            f"  frames     {split.n_frames} x {cfg.n_mels} mels ({cfg.dtype}), "
            f"{human_bytes(split.nbytes())} raw",
            f"  chunking   {chunks[0]} frames x {chunks[1]} mels, "
            f"compression {split.meta.compression}",
            f"  labels     {'yes' if split.meta.labelled else 'no'}, "
            f"{len(split.vocabulary)}-class vocabulary",
            f"  mel stats  {'computed' if split.stats is not None else 'not computed'}",
            f"  made by    fat {split.meta.tool_version} at {split.meta.created_utc}",
            "  features   " + ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items()),
        ]
    return "\n".join(out), unreadable


def clip_rows(split: Split, label: str | None = None) -> list[dict]:
    """One row per clip (id, duration, frames, labels), optionally only clips with `label`."""
    column = None
    if label is not None:
        if label not in split.vocabulary:
            raise FatError(f"label {label!r} is not in the vocabulary of split {split.name!r}")
        column = split.vocabulary.index(label)
    rows = []
    for i, clip_id in enumerate(split.clip_ids):
        if column is not None and not split.labels[i, column]:
            continue
        rows.append(
            {
                "id": clip_id,
                "duration_s": round(float(split.durations[i]), 3),
                "frames": int(split.lengths[i]),
                "labels": ",".join(split.labels_of(i)),
            }
        )
    return rows

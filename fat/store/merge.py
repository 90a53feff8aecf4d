"""`merge_stores`: stores featurized as shards (`fat featurize --shard I/N`) joined into one.

Every input split is verified against its checksums first, every clip is checked again on
arrival (its re-encoded frames must give the checksum the shard recorded), and the output
is written by the store's own writer: committed in batches, so a merge that dies is resumed
by running it again, which skips the clips already committed.
"""

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from fat.core.errors import FatError
from fat.core.progress import progress_bar
from fat.store.reader import Split
from fat.store.remote import check_writable_location
from fat.store.store import open_store
from fat.store.verify import verify_split
from fat.store.writer import ClipRecord, encode_clip


@dataclass
class MergeSummary:
    out: Path
    added: dict[str, int] = field(default_factory=dict)  # per split: clips written now
    already: dict[str, int] = field(default_factory=dict)  # per split: committed before

    def lines(self) -> list[str]:
        return [
            f"{name}: {self.added[name]} clips merged into {self.out}"
            + (f" ({self.already[name]} already there)" if self.already[name] else "")
            for name in self.added
        ]


def _check_compatible(name: str, parts: list[tuple[Path, Split]]) -> None:
    """FatError unless every input's split `name` has the first one's feature settings,
    vocabulary and labelling, and no clip id is in two inputs."""
    first_path, first = parts[0]
    for path, split in parts[1:]:
        if split.feature_config != first.feature_config:
            a, b = first.feature_config.to_dict(), split.feature_config.to_dict()
            differ = ", ".join(f"{k} {a[k]!r} vs {b[k]!r}" for k in a if a[k] != b.get(k))
            raise FatError(
                f"{path}: split {name!r} has other feature settings than in {first_path} "
                f"({differ}); shards must be featurized alike"
            )
        if split.vocabulary != first.vocabulary:
            raise FatError(f"{path}: split {name!r} has another vocabulary than in {first_path}")
        if split.meta.labelled != first.meta.labelled:
            raise FatError(f"{path}: split {name!r} is labelled in one input and not the other")
    owner: dict[str, Path] = {}
    for path, split in parts:
        for clip_id in split.clip_ids:
            if clip_id in owner:
                raise FatError(
                    f"clip {clip_id!r} of split {name!r} is in both {owner[clip_id]} and {path}; "
                    "shards must not overlap"
                )
            owner[clip_id] = path


def merge_stores(
    out: Path, inputs: list[Path], commit_every: int = 256, progress: bool = True
) -> MergeSummary:
    """Every split of `inputs` into the store `out` (created, or resumed), inputs in order."""
    if not inputs:
        raise FatError("store merge needs at least one input store")
    check_writable_location(out)
    out = Path(out)
    if any(Path(p).resolve() == out.resolve() for p in inputs):
        raise FatError(f"{out}: the output cannot also be an input")
    summary = MergeSummary(out)
    with ExitStack() as stack:
        stores = [(Path(p), stack.enter_context(open_store(p))) for p in inputs]
        names = list(dict.fromkeys(n for _, s in stores for n in s.splits()))
        target = stack.enter_context(open_store(out, "a"))
        for name in names:
            parts = [(p, s.split(name)) for p, s in stores if name in s.splits()]
            _check_compatible(name, parts)
            for path, split in parts:
                problems, _ = verify_split(split, check_data=True)
                if problems:
                    raise FatError(f"{path}: {problems[0]}; not merged (fat store verify {path})")
            summary.added[name], summary.already[name] = _merge_split(
                target, name, parts, commit_every, progress
            )
    return summary


def _merge_split(target, name: str, parts: list[tuple[Path, Split]], commit_every: int, progress):
    first = parts[0][1]
    cfg = first.feature_config
    meta = first.meta
    writer = target.writer(
        name,
        cfg,
        first.vocabulary,
        labelled=meta.labelled,
        commit_every=commit_every,
        dataset=meta.dataset,
        single_label=meta.single_label,
        class_ids=meta.class_ids,
    )
    added = already = 0
    total = sum(s.n_clips for _, s in parts)
    with writer, progress_bar(total=total, desc=f"merge {name}", unit="clip", show=progress) as bar:
        for path, split in parts:
            sources, checksums = split.source, split.checksums
            for i, clip_id in enumerate(split.clip_ids):
                bar.update(1)
                if clip_id in writer.committed:
                    already += 1
                    continue
                rate, channels, duration = sources[i]
                record = ClipRecord(
                    clip_id,
                    split.read(i),
                    split.labels[i],
                    int(rate),
                    int(channels),
                    duration,
                    split.info(i),
                )
                encoded = encode_clip(record, cfg.dtype)
                if encoded.checksum != int(checksums[i]):
                    raise FatError(
                        f"{path}: clip {clip_id!r} of split {name!r} does not match its checksum "
                        "as read; not merged"
                    )
                writer.add(encoded)
                added += 1
    return added, already

"""`fat store ...`: look inside a feature store; the store path is always the first argument."""

import contextlib
import csv
import io
import json
import sys
from pathlib import Path

import click
import numpy as np

from fat.cli.options import STORE_LOCATION, table_format_option
from fat.core.errors import FatError
from fat.core.progress import progress_bar
from fat.store import open_store, repair_store
from fat.store.describe import clip_rows, describe_store

STORE = click.argument("store_path", metavar="STORE", type=STORE_LOCATION)
SPLIT = click.argument("split_name", metavar="SPLIT")


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


@click.group()
def store() -> None:
    """Inspect, verify, export, merge and copy feature stores."""


@store.command()
@STORE
def info(store_path: Path) -> None:
    """Splits, clips, hours, frames, dtype, chunking, size on disk and feature config."""
    with open_store(store_path) as feature_store:
        text, unreadable = describe_store(feature_store)
    click.echo(text)
    if unreadable:
        click.echo(f"{store_path}: {len(unreadable)} split(s) unreadable", err=True)
        sys.exit(1)


@store.command(name="ls")
@STORE
@SPLIT
@click.option("--label", help="Only clips carrying this label.")
@table_format_option("Output as an aligned table, CSV or JSON.")
def ls_command(store_path: Path, split_name: str, label: str | None, fmt: str) -> None:
    """List the clips of a split: id, duration, frames, labels."""
    with open_store(store_path) as feature_store:
        rows = clip_rows(feature_store.split(split_name), label)
    columns = ["id", "duration_s", "frames", "labels"]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        click.echo(_table(rows, columns))
        click.echo(f"{len(rows)} clips", err=True)


@store.command()
@STORE
@SPLIT
@click.argument("clip_id")
@click.option("--png", type=click.Path(path_type=Path), help="Render the log-mel to this PNG.")
def show(store_path: Path, split_name: str, clip_id: str, png: Path | None) -> None:
    """Statistics of one clip; --png draws its log-mel with axes and labels."""
    with open_store(store_path) as feature_store:
        split = feature_store.split(split_name)
        i = split.index_of(clip_id)
        features = split.read(i).astype(np.float32)
        labels = split.labels_of(i)
        sr, channels, duration = split.source[i]
        cfg = split.feature_config
    rows = [
        ("clip", clip_id),
        ("split", split_name),
        ("labels", ", ".join(labels) or "(none)"),
        ("source", f"{int(sr)} Hz, {int(channels)} channel(s), {duration:.3f} s"),
        ("frames", f"{features.shape[1]} ({features.shape[1] / cfg.frames_per_second:.2f} s)"),
        ("dB", f"min {features.min():.1f}, mean {features.mean():.1f}, max {features.max():.1f}"),
    ]
    click.echo("\n".join(f"{k:7s} {v}" for k, v in rows))
    if png:
        from fat.analysis.plotting import plot_logmel

        title = f"{split_name}/{clip_id}: {', '.join(labels) or 'no labels'}"
        plot_logmel(features, cfg, title, png)
        click.echo(f"wrote {png}")


@store.command()
@STORE
@SPLIT
@click.option("--png", type=click.Path(path_type=Path), help="Draw label counts and durations.")
def stats(store_path: Path, split_name: str, png: Path | None) -> None:
    """Label counts and the duration distribution of a split."""
    with open_store(store_path) as feature_store:
        split = feature_store.split(split_name)
        counts = split.labels.sum(axis=0) if split.n_clips else np.zeros(len(split.vocabulary))
        label_counts = {n: int(c) for n, c in zip(split.vocabulary, counts, strict=True) if c}
        durations = split.durations
    click.echo(f"{split_name}: {len(durations)} clips, {durations.sum() / 3600:.3f} hours")
    if len(durations):
        q = np.percentile(durations, [0, 25, 50, 75, 100])
        click.echo(
            "duration (s): min {:.2f}  25% {:.2f}  median {:.2f}  75% {:.2f}  max {:.2f}".format(*q)
        )
    per_clip = split.labels.sum(axis=1) if split.n_clips else np.zeros(0)
    for k in sorted(set(per_clip.tolist())):
        click.echo(f"clips with {int(k)} label(s): {int((per_clip == k).sum())}")
    rows = [{"label": n, "clips": c} for n, c in sorted(label_counts.items(), key=lambda x: -x[1])]
    if rows:
        click.echo(_table(rows, ["label", "clips"]))
    if png:
        from fat.analysis.plotting import plot_split_overview

        plot_split_overview(label_counts, durations, f"{store_path.name}: split {split_name}", png)
        click.echo(f"wrote {png}")


@store.command()
@STORE
def repair(store_path: Path) -> None:
    """Finish what a killed or failed writer left (an HDF5 file marked open for writing, a
    compaction, an overwrite's swap) and roll damaged splits back to their last good commit;
    one line per thing done. Any writer does the same on opening; this is for readers."""
    for line in repair_store(store_path):
        click.echo(line)


@store.command()
@STORE
@click.option("--no-data", is_flag=True, help="Check the index only, not every frame.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def verify(store_path: Path, no_data: bool, quiet: bool) -> None:
    """Check index consistency, lengths, labels, finite values and checksums; exit 1 on problems."""
    with open_store(store_path) as feature_store:
        total = 0
        for name in feature_store.splits():
            with contextlib.suppress(FatError):  # verify reports the unreadable ones
                total += feature_store.split(name).n_frames
        with progress_bar(
            total=total, unit="frame", unit_scale=True, show=not no_data, leave=False
        ) as bar:
            problems, notes = feature_store.verify(check_data=not no_data, progress=bar.update)
    for note in notes:
        click.echo(f"note: {note}")
    for problem in problems:
        click.echo(f"problem: {problem}")
    if problems:
        click.echo(f"{store_path}: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"{store_path}: OK")


@store.command()
@STORE
@SPLIT
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["npz", "hf", "lhotse", "npy"]),
    default="npz",
    show_default=True,
    help="npz (frames, offsets, lengths, ids, labels), hf (a Hugging Face datasets dataset), "
    "lhotse (a CutSet with its features), npy (one clip's (n_mels, n_frames), with --clip).",
)
@click.option("--clip", "clips", multiple=True, help="Only this clip (repeatable).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def export(store_path: Path, split_name: str, out: Path, fmt: str, clips, quiet: bool) -> None:
    """Write a split (or some clips of it) where other tools read it: docs/store.md."""
    from fat.store.export import export_split

    with open_store(store_path) as feature_store:
        split = feature_store.split(split_name)
        if fmt == "npy":
            if len(clips) != 1:
                raise FatError("--format npy writes one clip: give exactly one --clip")
            features = np.ascontiguousarray(split.read(clips[0]))
            np.save(out, features)
            click.echo(f"wrote {out} {features.shape} {features.dtype}")
            return
        done = export_split(split, out, fmt, list(clips) or None, progress=not quiet)
    click.echo(f"wrote {done.out}: {done.clips} clips, {done.frames:,} frames ({fmt})")


@store.command()
@click.argument("out", type=STORE_LOCATION)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--commit-every", type=int, default=256, show_default=True, help="Clips per commit.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def merge(out: Path, inputs: tuple[Path, ...], commit_every: int, quiet: bool) -> None:
    """Join stores featurized as shards (`fat featurize --shard I/N`) into OUT: the same
    feature settings and vocabulary required, no clip in two inputs, every checksum verified.
    A merge that stops is continued by running it again."""
    from fat.store.merge import merge_stores

    for line in merge_stores(out, list(inputs), commit_every, progress=not quiet).lines():
        click.echo(line)


@store.command()
@click.argument("source", metavar="SRC", type=STORE_LOCATION)
@click.argument("destination", metavar="DST", type=STORE_LOCATION)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def copy(source: Path | str, destination: Path | str, quiet: bool) -> None:
    """Copy a Zarr store between local disk and object storage (s3://bucket/f.zarr, either
    way): every clip verified against its checksum on arrival, and DST not readable as a
    store until the copy is whole. A copy that stops is continued by running it again."""
    from fat.store.copy import copy_store

    for line in copy_store(source, destination, progress=not quiet).lines():
        click.echo(line)

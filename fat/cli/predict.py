"""`fat predict`, `fat evaluate`, `fat select-noisy`: a trained run applied to a store split."""

import json
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

RUN = click.argument("run", type=click.Path(path_type=Path, exists=True, file_okay=False))
CHECKPOINT = click.option(
    "--checkpoint", type=click.Choice(["best", "last", "swa"]), default="best", show_default=True
)
STORE = click.option(
    "--store", type=click.Path(path_type=Path), default=None, help="Default: the run's store."
)
TTA = click.option(
    "--tta",
    type=click.Choice(["mean", "max"]),
    default="mean",
    show_default=True,
    help="How a clip's sliding windows are combined.",
)
OVERLAP = click.option("--overlap", default=0.5, show_default=True, help="Window overlap.")
DEVICE = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")


def _score(run, split, clips, device_name, tta, overlap, quiet, what):
    from fat.train.loop import pick_device
    from fat.train.predict import predict_split

    with tqdm(total=len(clips), desc=what, unit="clip", disable=quiet) as bar:
        return predict_split(
            run, split, pick_device(device_name), clips, tta, overlap, progress=bar.update
        )


@click.command()
@RUN
@CHECKPOINT
@STORE
@click.option("--split", default="test", show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Submission CSV (default RUN/submission_<split>.csv).",
)
@TTA
@OVERLAP
@DEVICE
@click.option(
    "--frames",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write frame-level probabilities (models with frame outputs) to this .npz.",
)
@click.option("--quiet", is_flag=True)
def predict(run, checkpoint, store, split, out, tta, overlap, device, frames, quiet) -> None:
    """Write Kaggle-format clip probabilities for every clip of a split."""
    from fat.errors import FatError
    from fat.train.checkpoint import load_trained_model
    from fat.train.inference import frame_scores
    from fat.train.loop import pick_device
    from fat.train.predict import open_split_for, write_submission

    trained = load_trained_model(run, checkpoint)
    data = open_split_for(trained, store or trained.config.store, split)
    probs = _score(trained, data, np.arange(len(data)), device, tta, overlap, quiet, "predict")
    out = out or Path(run) / f"submission_{split}.csv"
    write_submission(out, data.clip_ids, trained.vocabulary, probs)
    click.echo(f"wrote {out}: {len(data)} clips x {len(trained.vocabulary)} classes")
    if frames is not None:
        dev = pick_device(device)
        per_clip = {}
        for i in tqdm(range(len(data)), desc="frames", unit="clip", disable=quiet):
            f = frame_scores(
                trained.model, data, i, trained.config.crop_frames, dev, trained.normalizer
            )
            if f is None:
                raise FatError(f"arch {trained.config.arch!r} has no frame-level outputs")
            per_clip[data.clip_ids[i]] = f.astype(np.float32)
        np.savez_compressed(frames, **per_clip)
        click.echo(f"wrote {frames}: frame probabilities (T', classes) per clip")


@click.command()
@RUN
@CHECKPOINT
@STORE
@click.option(
    "--split",
    default="val",
    show_default=True,
    help="A store split with labels, or 'val': the run's own hold-out per split.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for summary.json and per_class.csv (default RUN/eval/<split>).",
)
@TTA
@OVERLAP
@DEVICE
@click.option("--worst", default=10, show_default=True, help="Classes listed in the table.")
@click.option("--quiet", is_flag=True)
def evaluate(run, checkpoint, store, split, out, tta, overlap, device, worst, quiet) -> None:
    """lwlrap overall and per class, the worst classes and what they are confused with."""
    from fat.train.checkpoint import load_trained_model
    from fat.train.predict import evaluate_scores, open_split_for, validation_clips

    trained = load_trained_model(run, checkpoint)
    store = store or trained.config.store
    names = list(trained.config.train_splits) if split == "val" else [split]
    parts = {}
    for name in names:
        data = open_split_for(trained, store, name)
        clips = validation_clips(trained, data) if split == "val" else np.arange(len(data))
        probs = _score(trained, data, clips, device, tta, overlap, quiet, f"evaluate {name}")
        parts[name] = (data.labels[clips].astype(np.float64), probs)
    result = evaluate_scores(parts, trained.vocabulary)
    out = out or Path(run) / "eval" / split
    result.write(out, {"run": str(run), "checkpoint": checkpoint, "split": split, "tta": tta})
    chance = json.loads((out / "summary.json").read_text())["chance_lwlrap"]
    click.echo(
        f"lwlrap {result.subsets['all'].overall:.4f} on {len(result.truth)} clips ({split}); "
        f"random scores would get {chance:.4f}"
    )
    for name, subset in result.subsets.items():
        if name != "all":
            click.echo(f"  {name}: {subset.overall:.4f}")
    rows = result.per_class_rows()[:worst]
    if rows:
        click.echo(f"{'class':<36} {'lwlrap':>7} {'n':>4}  most confused with")
        for r in rows:
            confused = r["confused_with"].replace(";", ", ")
            click.echo(f"{r['class']:<36} {r['lwlrap']:>7.3f} {r['positives']:>4}  {confused}")
    click.echo(f"wrote {out / 'summary.json'} and {out / 'per_class.csv'}")


@click.command("select-noisy")
@RUN
@CHECKPOINT
@STORE
@click.option(
    "--min-lwlrap",
    default=0.5,
    show_default=True,
    help="Keep noisy clips whose own labels rank at least this well.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Clip list file.")
@DEVICE
@click.option("--quiet", is_flag=True)
def select_noisy(run, checkpoint, store, min_lwlrap, out, device, quiet) -> None:
    """Score the noisy split with a run and list the clips whose labels it agrees with
    (for `fat train --noisy-clips FILE`)."""
    from fat.train.checkpoint import load_trained_model
    from fat.train.predict import open_split_for, select_agreeing_clips

    trained = load_trained_model(run, checkpoint)
    data = open_split_for(trained, store or trained.config.store, "noisy")
    probs = _score(trained, data, np.arange(len(data)), device, "mean", 0.5, quiet, "score noisy")
    kept, agreement = select_agreeing_clips(data.clip_ids, data.labels, probs, min_lwlrap)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# fat select-noisy {run} --min-lwlrap {min_lwlrap}: {len(kept)} of {len(data)}\n"
    out.write_text(header + "".join(f"{c}\n" for c in kept))
    click.echo(
        f"kept {len(kept)} of {len(data)} noisy clips (median agreement "
        f"{np.nanmedian(agreement):.3f}); wrote {out}"
    )

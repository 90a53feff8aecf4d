"""`fat predict`, `evaluate`, `select-noisy`, `tag`, `embed` and `export`: a trained run applied
to a store split, to audio files, or written out. Shared options: the fields of `PredictConfig`."""

import json
from pathlib import Path

import click
import numpy as np

from fat.cli.options import given_settings, settings_options, store_option, table_format_option
from fat.core.wording import plural
from fat.predict.settings import PredictConfig
from fat.runs.directory import CHECKPOINT_HELP

RUN = click.argument("run", type=click.Path(path_type=Path, exists=True, file_okay=False))
STORE = store_option("Default: the run's store.")
QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
MAX_SECONDS = click.option(
    "--max-seconds",
    type=float,
    default=600.0,
    show_default=True,
    help="Longest audio file taken, by its header; longer ones are skipped with a line "
    "(`fat detect` scores files of any length).",
)


def predict_settings(kw: dict) -> PredictConfig:
    return PredictConfig.from_dict(given_settings(PredictConfig, kw))


@click.command()
@RUN
@STORE
@click.option("--split", default="test", show_default=True, help="Store split to predict.")
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Submission CSV (default RUN/submission_<split>.csv).",
)
@click.option(
    "--frames",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write frame-level probabilities (models with frame outputs) to this .npz.",
)
@QUIET
@settings_options(PredictConfig)
def predict(run, store, split, out, frames, quiet, **kw) -> None:
    """Write Kaggle-format clip probabilities for every clip of a split. RUN may be a
    cross-validation directory (`fat cv`): its folds' probabilities are averaged."""
    from fat.predict.outputs import predict_to_files

    for written in predict_to_files(
        run, split, predict_settings(kw), store, out, frames, not quiet
    ):
        click.echo(written.line())


@click.command()
@RUN
@STORE
@click.option(
    "--split",
    default="val",
    show_default=True,
    help="A store split with labels, or 'val': the run's own hold-out per split (for a "
    "cross-validation directory, its out-of-fold predictions).",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for summary.json and per_class.csv (default RUN/eval/<split>).",
)
@click.option("--worst", default=10, show_default=True, help="Classes listed in the table.")
@QUIET
@settings_options(PredictConfig)
def evaluate(run, store, split, out, worst, quiet, **kw) -> None:
    """lwlrap overall and per class, the worst classes and what they are confused with. RUN
    may be a cross-validation directory: its folds' mean, or its out-of-fold predictions."""
    from fat.predict.outputs import evaluate_run

    result, out = evaluate_run(run, split, predict_settings(kw), store, out, progress=not quiet)
    click.echo(
        f"lwlrap {result.lwlrap:.4f} on {plural(len(result.truth), 'clip')} ({split}); "
        f"random scores would get {result.chance_lwlrap:.4f}"
    )
    others = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if k != "lwlrap")
    click.echo(f"  {others}")
    if len(result.parts) > 1:
        for name in result.parts:
            click.echo(f"  {name}: {result.subsets[name].overall:.4f}")
    rows = result.class_results()[:worst]
    if rows:
        click.echo(f"{'class':<36} {'lwlrap':>7} {'n':>4}  most confused with")
        for r in rows:
            confused = ", ".join(r.confused_with)
            click.echo(f"{r.name:<36} {r.lwlrap:>7.3f} {r.positives:>4}  {confused}")
    click.echo(f"wrote {out / 'summary.json'} and {out / 'per_class.csv'}")


@click.command()
@RUN
@click.argument("audio", nargs=-1, type=click.Path(path_type=Path))
@STORE
@click.option("--split", default="test", show_default=True, help="Store split to embed.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="EMB.npy: (n_clips, D) float32; the clip ids go to EMB.ids.txt, one per line.",
)
@QUIET
@MAX_SECONDS
@settings_options(PredictConfig)
def embed(run, audio, store, split, out, quiet, max_seconds, **kw) -> None:
    """Clip-level embeddings (the layer before the classifier) of every clip of a split, or
    of the AUDIO files and folders given (featurized as `fat tag` does), for downstream use:
    averaged over the same sliding windows `fat predict` scores."""
    from fat.core.errors import FatError
    from fat.predict.outputs import write_embeddings
    from fat.predict.scoring import embed_split, open_run_split
    from fat.predict.tagging import embed_files
    from fat.runs.checkpoint import load_trained_model

    cfg = predict_settings(kw)
    if audio:
        if store is not None:
            raise FatError("give AUDIO files or --store, not both")
        vectors, files, skipped = embed_files(run, list(audio), cfg, not quiet, max_seconds)
        for path, reason in skipped:
            click.echo(f"skipped {path}: {reason}", err=True)
        ids, what = [str(p) for p in files], "audio files"
    else:
        trained = load_trained_model(run, cfg.checkpoint)
        with open_run_split(trained, store, split) as data:
            vectors = embed_split(trained, data, cfg, progress=not quiet)
            ids, what = data.clip_ids, "clip ids"
    click.echo(write_embeddings(out, vectors, ids, what).line())


@click.command()
@RUN
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top-k", type=int, default=5, show_default=True, help="Labels shown per file.")
@click.option(
    "--threshold", type=float, default=0.0, show_default=True, help="Show only scores >= this."
)
@table_format_option(
    "table: the top labels per file; csv: every class's score per file (the submission "
    "columns); json: the top labels per file."
)
@click.option(
    "--frames",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for one PNG per file: log-mel, frame-level timeline (frame models), scores.",
)
@QUIET
@MAX_SECONDS
@settings_options(PredictConfig)
def tag(run, audio, top_k, threshold, fmt, frames, quiet, max_seconds, **kw) -> None:
    """Tag audio files (WAV, FLAC, OGG, MP3, AIFF, ...; folders are searched) with RUN, no
    store needed: each file featurized with the run's feature config and scored with the same
    sliding windows and TTA as `fat predict`. A file that cannot be read is skipped with a
    line."""
    from fat.predict.tagging import tag_files

    cfg = predict_settings(kw)
    result = tag_files(run, list(audio), cfg, frames is not None, not quiet, max_seconds)
    for path, reason in result.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    tops = result.top(top_k, threshold)
    if fmt == "table":
        click.echo(tag_table(result.files, tops, threshold))
    elif fmt == "json":
        rows = [
            {"file": str(f), "labels": [{"label": n, "score": round(v, 6)} for n, v in t]}
            for f, t in zip(result.files, tops, strict=True)
        ]
        click.echo(json.dumps(rows, indent=1))
    else:
        click.echo("file," + ",".join(result.vocabulary))
        for f, row in zip(result.files, result.probs, strict=True):
            click.echo(f"{f}," + ",".join(f"{v:.6f}" for v in row))
    if frames is not None and result.files:
        _draw_tag_figures(result, run, frames, cfg)


def tag_table(files: list[Path], tops: list[list[tuple[str, float]]], threshold: float) -> str:
    """Aligned columns file, rank, label, score: a row per label shown, the file named on its
    first row only."""
    rows = [("file", "rank", "label", "score")]
    for f, top in zip(files, tops, strict=True):
        shown = [(str(k + 1), n, f"{v:.3f}") for k, (n, v) in enumerate(top)]
        for k, (rank, name, score) in enumerate(shown or [("-", f"(nothing >= {threshold})", "")]):
            rows.append((str(f) if k == 0 else "", rank, name, score))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = [
        f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}"
        for r in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _draw_tag_figures(result, run, folder: Path, cfg) -> None:
    from fat.analysis.figures import plot_clip_prediction
    from fat.runs.checkpoint import load_trained_model

    feature_config = load_trained_model(run, cfg.checkpoint).feature_config
    folder.mkdir(parents=True, exist_ok=True)
    per_file = result.frames or [None] * len(result.files)
    for k, path in enumerate(result.files):
        out = folder / f"{k:04d}_{Path(path).stem}.png"
        plot_clip_prediction(
            result.features[k], feature_config, result.vocabulary, result.probs[k], [], out,
            frame_probs=per_file[k], title=str(path),
        )  # fmt: skip
    click.echo(f"wrote {plural(len(result.files), 'figure')} into {folder}")


@click.command("export")
@RUN
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["torchscript", "onnx"]),
    default="torchscript",
    show_default=True,
    help="TorchScript (torch.jit.load) or ONNX (onnxruntime and others).",
)
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="The model file.")
@click.option("--checkpoint", default="best", show_default=True, help=CHECKPOINT_HELP)
@click.option(
    "--waveform",
    is_flag=True,
    help="TorchScript only: the model takes a whole clip's mono waveform at the run's sample "
    "rate, the log-mel front end and the sliding windows included.",
)
def export_model(run, fmt, out, checkpoint, waveform) -> None:
    """A self-contained model of the run: raw log-mel crops (batch, n_mels, crop_frames) ->
    class probabilities, normalisation included (or, with --waveform, a clip's waveform ->
    its probabilities); the vocabulary, feature config and window rule go to OUT with suffix
    .json."""
    from fat.predict.export import export_run

    done = export_run(run, fmt, out, checkpoint, waveform)
    shape = "x".join(map(str, done.input_shape[1:]))
    takes = "a mono waveform" if waveform else f"batch x {shape}"
    click.echo(f"wrote {done.model} (input: {takes}) and {done.manifest}")


@click.command("select-noisy")
@RUN
@STORE
@click.option(
    "--min-lwlrap",
    default=0.5,
    show_default=True,
    help="Keep noisy clips whose own labels rank at least this well.",
)
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Clip list file.")
@QUIET
@settings_options(PredictConfig)
def select_noisy(run, store, min_lwlrap, out, quiet, **kw) -> None:
    """Score the noisy split with a run and list the clips whose labels it agrees with
    (for `fat train --noisy-clips FILE`)."""
    from fat.predict.scoring import select_noisy_clips

    cfg = predict_settings(kw)
    kept, agreement = select_noisy_clips(run, min_lwlrap, out, cfg, store, progress=not quiet)
    click.echo(
        f"kept {len(kept)} of {len(agreement)} noisy clips (median agreement "
        f"{np.nanmedian(agreement):.3f}); wrote {out}"
    )

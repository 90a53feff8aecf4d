"""`fat report`: figures and an index page for one or more runs."""

from pathlib import Path

import click
import numpy as np


def clip_figures(run: Path, store: str | None, split: str, n_clips: int, out: Path) -> list[Path]:
    """Log-mel + predicted vs true labels for a few clips of `split` (frame heat-map for models
    with frame outputs), from the run's best checkpoint."""
    import torch

    from fat.analysis.figures import plot_clip_prediction
    from fat.train.checkpoint import load_trained_model
    from fat.train.predict import open_split_for

    trained = load_trained_model(run, "best")
    data = open_split_for(trained, store or trained.config.store, split)
    labelled = np.flatnonzero(data.labels.sum(axis=1) > 0)
    picks = (labelled if len(labelled) else np.arange(len(data)))[:n_clips]
    paths = []
    for i in picks.tolist():
        features = data.read(i).astype(np.float32)
        x = torch.from_numpy(trained.normalizer.apply(features.T, np.float32).T[None])
        with torch.no_grad():
            logits, frames = trained.model.forward_frames(x)
        name = f"{run.name}_clip_{data.clip_ids[i].rsplit('.', 1)[0]}.png"
        paths.append(
            plot_clip_prediction(
                features,
                trained.feature_config,
                trained.vocabulary,
                torch.sigmoid(logits)[0].numpy(),
                data.labels_of(i),
                out / name,
                frame_probs=None if frames is None else frames[0].numpy(),
                title=f"{run.name}: {split}/{data.clip_ids[i]}",
            )
        )
    return paths


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Report folder.")
@click.option("--store", default=None, help="Store for clip figures (default: the run's).")
@click.option("--clip-split", default="test", show_default=True, help="Split of clip figures.")
@click.option("--clips", default=2, show_default=True, help="Clip figures per run; 0 = none.")
def report(runs, out, store, clip_split, clips) -> None:
    """Curves, LR schedule, per-class lwlrap, gradient norms and clip figures for RUNS."""
    from fat.analysis.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    figures = []
    if clips > 0:
        for run in runs:
            figures += clip_figures(run, store, clip_split, clips, out)
    index = write_report(list(runs), out, clip_figures=figures)
    click.echo(f"wrote {index}")

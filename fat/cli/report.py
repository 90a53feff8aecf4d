"""`fat report`: figures and an index page for one or more runs."""

from pathlib import Path

import click

from fat.cli.options import given_settings, settings_options, store_option
from fat.predict.settings import PredictConfig


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Report folder.")
@store_option("Store for clip figures (default: the run's).")
@click.option("--clip-split", default="test", show_default=True, help="Split of clip figures.")
@click.option("--clips", default=2, show_default=True, help="Clip figures per run; 0 = none.")
@settings_options(PredictConfig)
def report(runs, out, store, clip_split, clips, **kw) -> None:
    """Curves, LR schedule, per-class lwlrap, gradient norms and clip figures for RUNS (a
    cross-validation directory stands for its folds). Clip figures show the scores
    `fat predict` gives with the same options."""
    from fat.analysis.clips import write_clip_figures
    from fat.analysis.report import write_report
    from fat.runs.cv_directory import run_paths

    cfg = PredictConfig.from_dict(given_settings(PredictConfig, kw))
    runs = [run for given in runs for run in run_paths(given)]
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    if clips > 0:
        for run in runs:
            figures += write_clip_figures(run, out, cfg, store, clip_split, clips)
    click.echo(f"wrote {write_report(list(runs), out, clip_figures=figures)}")

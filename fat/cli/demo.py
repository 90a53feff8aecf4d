"""`fat demo-data` and `fat demo`: the pipeline end to end on generated data."""

from pathlib import Path

import click

from fat.cli.options import given_settings, settings_options
from fat.demo.settings import DemoConfig


@click.command("demo-data")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the data.")
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply clip counts (120 curated, 240 noisy, 60 test at 1.0).",
)
@click.option(
    "--bad-files",
    is_flag=True,
    help="Add an empty and a text .wav to train_noisy/, and a CSV row without a file.",
)
def demo_data(out: Path, seed: int, scale: float, bad_files: bool) -> None:
    """Write a small synthetic dataset in the FSDKaggle2019 layout to OUT.

    12 classes; ~15% of clips carry two labels; clips last 0.4-15 s. ~30% of the noisy
    split's clips show other labels than the truth: ~15% a wrong label, ~14% an extra one,
    ~1% a missing one. Under 50 MB at scale 1."""
    from fat.demo.data import write_demo_dataset

    counts = write_demo_dataset(out, seed=seed, scale=scale, bad_files=bad_files)
    click.echo(f"wrote {out}: " + ", ".join(f"{n} {split}" for split, n in counts.items()))


@click.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Folder for the data, store, run, submission and report.",
)
@settings_options(DemoConfig)
def demo(out: Path, **kw) -> None:
    """The whole pipeline on generated data: featurize, train, predict, evaluate, report."""
    from fat.demo.pipeline import run_demo

    run_demo(out, DemoConfig.from_dict(given_settings(DemoConfig, kw)), echo=click.echo)

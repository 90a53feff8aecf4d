"""`fat demo-data` and `fat demo`: the pipeline end to end on generated data."""

import json
import shutil
from pathlib import Path

import click

from fat.dataset import SPLITS


@click.command("demo-data")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply clip counts (120 curated, 240 noisy, 60 test at 1.0).",
)
@click.option("--bad-files", is_flag=True, help="Add broken files to train_noisy/ to try errors.")
def demo_data(out: Path, seed: int, scale: float, bad_files: bool) -> None:
    """Write a small synthetic dataset in the FSDKaggle2019 layout to OUT."""
    from fat.demo import write_demo_dataset

    counts = write_demo_dataset(out, seed=seed, scale=scale, bad_files=bad_files)
    click.echo(f"wrote {out}: " + ", ".join(f"{n} {split}" for split, n in counts.items()))


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--scale", type=float, default=1.0, show_default=True)
@click.option("--workers", type=int, default=None, help="Featurize processes (default: cores).")
@click.option("--epochs", type=int, default=15, show_default=True)
@click.option(
    "--width", type=float, default=0.25, show_default=True, help="CNN channel multiplier."
)
@click.pass_context
def demo(
    ctx: click.Context, out: Path, scale: float, workers: int | None, epochs: int, width: float
):
    """The whole pipeline on generated data: featurize, train, predict, evaluate, report."""
    from fat.cli.predict import evaluate, predict
    from fat.cli.report import report
    from fat.cli.train import train
    from fat.demo import write_demo_dataset
    from fat.featurize.run import featurize_split

    data_dir, store_path, figures = out / "data", out / "features.zarr", out / "figures"
    if not (data_dir / "sample_submission.csv").exists():
        counts = write_demo_dataset(data_dir, scale=scale)
        click.echo(f"[1/6] demo data in {data_dir}: {counts}")
    else:
        click.echo(f"[1/6] demo data already in {data_dir}")
    click.echo(f"[2/6] featurizing into {store_path}")
    for split in SPLITS:
        labels = data_dir / "test_labels.csv" if split == "test" else None
        summary = featurize_split(data_dir, split, store_path, workers=workers, labels_file=labels)
        for line in summary.lines():
            click.echo(f"      {line}")
    click.echo("[3/6] verifying and drawing the store")
    draw_store(store_path, figures)
    run = out / "runs" / "cnn"
    click.echo(f"[4/6] training the baseline CNN (width {width}, mixup) into {run}")
    if (run / "checkpoints" / "last.pt").exists():
        shutil.rmtree(run)  # the demo always shows a fresh run
    ctx.invoke(
        train,
        store=store_path,
        out=run,
        arch="cnn",
        width=width,
        epochs=epochs,
        batch_size=16,
        lr=3e-3,
        schedule="onecycle",
        mixup=0.4,
        train_splits="curated,noisy",
        seed=0,
        quiet=False,
    )
    click.echo("[5/6] predicting the test split and scoring it against the answer key")
    ctx.invoke(predict, run=run, out=out / "submission.csv", quiet=True)
    ctx.invoke(evaluate, run=run, split="test", quiet=True, worst=5)
    click.echo("[6/6] report")
    ctx.invoke(report, runs=(run,), out=out / "report", clips=2)
    summary = json.loads((run / "eval" / "test" / "summary.json").read_text())
    click.echo(
        f"demo done: test lwlrap {summary['lwlrap']:.3f} (random scores: "
        f"{summary['chance_lwlrap']:.3f}); submission {out / 'submission.csv'}, "
        f"report {out / 'report' / 'index.md'}"
    )


def draw_store(store_path: Path, figures: Path) -> None:
    """Verify the store and draw one clip and an overview of each split."""
    from fat.cli.store import describe_store
    from fat.plots import plot_logmel, plot_split_overview
    from fat.store import open_store

    figures.mkdir(parents=True, exist_ok=True)
    with open_store(store_path) as store:
        problems, _ = store.verify()
        click.echo(describe_store(store))
        curated = store.split("curated")
        first = curated.clip_ids[0]
        plot_logmel(
            curated.read(first).astype("float32"),
            curated.feature_config,
            f"curated/{first}: {', '.join(curated.labels_of(first))}",
            figures / "clip.png",
        )
        for name in store.splits():
            split = store.split(name)
            counts = dict(zip(split.vocabulary, split.labels.sum(axis=0).tolist(), strict=True))
            plot_split_overview(
                {k: v for k, v in counts.items() if v},
                split.durations,
                f"demo: split {name}",
                figures / f"{name}_overview.png",
            )
    if problems:
        raise click.ClickException("store verify found problems: " + "; ".join(problems))
    click.echo(f"store verified OK; figures in {figures}")

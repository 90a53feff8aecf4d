"""`fat demo-data` and `fat demo`: the pipeline end to end on generated data."""

import json
import shutil
from pathlib import Path

import click

from fat.dataset import SAMPLE_SUBMISSION, SPLITS

DATA, STORE = "data", "features.zarr"
DATA_PARAMS = "data.json"  # beside data/: the seed and scale that made it


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
    from fat.demo import write_demo_dataset

    counts = write_demo_dataset(out, seed=seed, scale=scale, bad_files=bad_files)
    click.echo(f"wrote {out}: " + ", ".join(f"{n} {split}" for split, n in counts.items()))


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the demo data.")
@click.option("--scale", type=float, default=1.0, show_default=True)
@click.option("--workers", type=int, default=None, help="Featurize threads (default: cores).")
@click.option("--epochs", type=int, default=15, show_default=True)
@click.option(
    "--width", type=float, default=0.25, show_default=True, help="CNN channel multiplier."
)
@click.pass_context
def demo(
    ctx: click.Context,
    out: Path,
    seed: int,
    scale: float,
    workers: int | None,
    epochs: int,
    width: float,
) -> None:
    """The whole pipeline on generated data: featurize, train, predict, evaluate, report."""
    from fat.cli.predict import evaluate, predict
    from fat.cli.report import report
    from fat.cli.train import train
    from fat.featurize.run import featurize_split

    data_dir, store_path, figures = out / DATA, out / STORE, out / "figures"
    click.echo(f"[1/6] {prepare_demo_data(out, seed, scale)}")
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


def prepare_demo_data(out: Path, seed: int, scale: float) -> str:
    """Make OUT/data for this seed and scale unless it is there already; says what it did.

    Data made with other settings is replaced, and the store featurized from it removed, but
    only when OUT/data.json shows that `fat demo` made them: a data/ without it is refused.
    """
    from fat.demo import write_demo_dataset

    data_dir, params_file = out / DATA, out / DATA_PARAMS
    wanted = {"seed": seed, "scale": scale}
    replaced = ""
    if params_file.exists():
        made = json.loads(params_file.read_text())
        # sample_submission.csv is written last: without it, generation was interrupted
        if made == wanted and (data_dir / SAMPLE_SUBMISSION).exists():
            return f"demo data (seed {seed}, scale {scale}) already in {data_dir}"
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(out / STORE, ignore_errors=True)
        replaced = f", replacing the data and store made with {made}"
    elif data_dir.exists():
        raise click.ClickException(
            f"{data_dir} exists but {params_file} does not, so it was not made by `fat demo`: "
            "remove it or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    params_file.write_text(json.dumps(wanted) + "\n")
    counts = write_demo_dataset(data_dir, seed=seed, scale=scale)
    return f"demo data (seed {seed}, scale {scale}) in {data_dir}: {counts}{replaced}"


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

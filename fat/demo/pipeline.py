"""`run_demo`: every stage of the pipeline on generated data, with the library's own functions:
featurize, verify and draw the store, train, predict, evaluate, report."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from fat.analysis.clips import write_clip_figures
from fat.analysis.plotting import plot_logmel, plot_split_overview
from fat.analysis.report import write_report
from fat.core.errors import FatError
from fat.core.files import atomic_write
from fat.core.layout import SAMPLE_SUBMISSION, SPLITS
from fat.core.submission import write_submission
from fat.demo.data import write_demo_dataset
from fat.demo.settings import DemoConfig
from fat.featurize.run import featurize_split
from fat.featurize.settings import FeaturizeOptions
from fat.predict.outputs import evaluate_run
from fat.predict.scoring import open_run_split, predict_split
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import load_trained_model
from fat.runs.directory import RunDirectory
from fat.runs.settings import ExperimentConfig, RunOptions
from fat.store import open_store
from fat.store.describe import describe_store
from fat.train.loop import train

DATA, STORE = "data", "features.zarr"
DATA_PARAMS = "data.json"  # beside data/: the seed and scale that made it


def demo_experiment(cfg: DemoConfig) -> ExperimentConfig:
    """The demo's model: the baseline CNN at `cfg.width`, mixup and a one-cycle LR, on curated
    and noisy clips."""
    return ExperimentConfig(
        arch="cnn",
        width=cfg.width,
        epochs=cfg.epochs,
        batch_size=16,
        lr=3e-3,
        schedule="onecycle",
        mixup=0.4,
        time_masks=0,
        freq_masks=0,
        train_splits=("curated", "noisy"),
        seed=0,
    )


def run_demo(out: Path, cfg: DemoConfig, echo: Callable[[str], None] = print) -> float:
    """The whole pipeline into `out`; returns the test lwlrap against the answer key."""
    out = Path(out)
    data_dir, store_path, figures = out / DATA, out / STORE, out / "figures"
    echo(f"[1/6] {prepare_demo_data(out, cfg.seed, cfg.scale)}")
    echo(f"[2/6] featurizing into {store_path}")
    for split in SPLITS:
        labels = data_dir / "test_labels.csv" if split == "test" else None
        options = FeaturizeOptions(workers=cfg.workers, quiet=cfg.quiet)
        summary = featurize_split(data_dir, split, store_path, options=options, labels_file=labels)
        for line in summary.lines():
            echo(f"      {line}")
    echo("[3/6] verifying and drawing the store")
    echo(draw_store(store_path, figures))
    run = out / "runs" / "cnn"
    echo(f"[4/6] training the baseline CNN (width {cfg.width}, mixup) into {run}")
    if RunDirectory(run).has_checkpoint():
        shutil.rmtree(run)  # the demo always shows a fresh run
    options = RunOptions(store=str(store_path), out=str(run), quiet=cfg.quiet)
    summary = train(demo_experiment(cfg), options)
    echo(summary.line())
    echo("[5/6] predicting the test split and scoring it against the answer key")
    predict = PredictConfig()
    trained = load_trained_model(run, predict.checkpoint)
    with open_run_split(trained, store_path, "test") as test:
        write_submission(
            out / "submission.csv",
            test.clip_ids,
            trained.vocabulary,
            predict_split(trained, test, predict, progress=not cfg.quiet),
        )
    evaluation, eval_dir = evaluate_run(run, "test", predict, progress=not cfg.quiet)
    echo(f"      test lwlrap {evaluation.lwlrap:.4f}; wrote {eval_dir}")
    echo("[6/6] report")
    clips = write_clip_figures(run, out / "report", predict, n_clips=2)
    index = write_report([run], out / "report", clip_figures=clips)
    echo(
        f"demo done: test lwlrap {evaluation.lwlrap:.3f} "
        f"(random scores: {evaluation.chance_lwlrap:.3f}); "
        f"submission {out / 'submission.csv'}, report {index}"
    )
    return evaluation.lwlrap


def prepare_demo_data(out: Path, seed: int, scale: float) -> str:
    """Make OUT/data for this seed and scale unless it is there already; says what it did.

    Data made with other settings is replaced, and the store featurized from it removed, but
    only when OUT/data.json shows that `fat demo` made them: a data/ without it is refused.
    """
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
        raise FatError(
            f"{data_dir} exists but {params_file} does not, so it was not made by `fat demo`: "
            "remove it or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(params_file) as f:
        f.write(json.dumps(wanted) + "\n")
    counts = write_demo_dataset(data_dir, seed=seed, scale=scale)
    return f"demo data (seed {seed}, scale {scale}) in {data_dir}: {counts}{replaced}"


def draw_store(store_path: Path, figures: Path) -> str:
    """Verify the store, draw one clip and an overview of each split; returns the store's
    description."""
    figures.mkdir(parents=True, exist_ok=True)
    with open_store(store_path) as store:
        problems, _ = store.verify()
        if problems:
            raise FatError("store verify found problems: " + "; ".join(problems))
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
        return f"{describe_store(store)[0]}\nstore verified OK; figures in {figures}"

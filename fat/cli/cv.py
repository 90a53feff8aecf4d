"""`fat cv` and `fat ensemble`: K-fold cross-validation runs and ensembles of runs, folds and
checkpoints (`fat.train.cv`, `fat.predict.ensemble`)."""

from pathlib import Path

import click

from fat.cli.options import (
    SectionedCommand,
    given_settings,
    sectioned_option,
    settings_options,
    store_option,
)
from fat.cli.train import PRINT_CONFIG, RECIPE, RUN_SETTINGS_FILE, echo_settings
from fat.core.errors import FatError
from fat.predict.settings import PredictConfig
from fat.runs.directory import KINDS
from fat.runs.settings import SECTIONS, ExperimentConfig, RunOptions

DEFAULT_FOLDS = 5


@click.command(cls=SectionedCommand, sections=SECTIONS)
@RECIPE
@RUN_SETTINGS_FILE
@PRINT_CONFIG
@sectioned_option(
    "--oof-checkpoint",
    type=click.Choice(list(KINDS)),
    default="best",
    show_default=True,
    help="Checkpoint of each fold that predicts its held-out clips.",
    section="Out-of-fold predictions",
)
@sectioned_option(
    "--folds",
    "folds_text",
    default=None,
    help="How many stratified folds (default 5), or `dataset`: the folds the data set ships "
    "(ESC-50's 5, a csv manifest's fold column).",
    section=SECTIONS[0],
)
@settings_options(RunOptions, ExperimentConfig, exclude=("fold", "folds", "folds_from"))
def cv(oof_checkpoint, recipe, config_file, print_config, folds_text, **kw) -> None:
    """K-fold cross-validation (--folds, default 5): the first training split cut into
    stratified folds, or the data set's own folds (--folds dataset), the other splits in
    every fold's training; --out gets fold0..foldK-1
    (ordinary runs), oof.csv (every clip predicted by the fold that held it out) and its
    scores overall and per fold (oof_summary.json: the data set's headline metric, lwlrap,
    mAP, accuracy, ...) and per class (oof_per_class.csv). Run the
    same command again to resume a CV that was stopped (with more --epochs, every fold
    continues to them)."""
    from fat.runs.compose import compose_settings
    from fat.train.cv import cross_validate

    experiment_given = given_settings(ExperimentConfig, kw)
    if folds_text == "dataset":
        experiment_given["folds_from"] = "dataset"
    elif folds_text is not None:
        try:
            experiment_given["folds"] = int(folds_text)
        except ValueError:
            raise FatError(f"--folds: a number of folds or `dataset`, got {folds_text!r}") from None
    experiment, options = compose_settings(
        recipe, config_file, experiment_given, given_settings(RunOptions, kw)
    )
    folds = experiment.folds or DEFAULT_FOLDS
    if experiment.folds_from == "dataset":
        from fat.train.cv import shipped_folds

        folds = shipped_folds(options.store, experiment.train_splits[0])
    experiment = experiment.replace(folds=folds, fold=0)
    if print_config:
        echo_settings(experiment, options)
        return
    predict = PredictConfig(checkpoint=oof_checkpoint, device=options.device)
    summary = cross_validate(experiment, options, folds, predict)
    click.echo(summary.line())


def parse_weights(text: str | None, n: int) -> list[float] | str | None:
    if text in (None, "equal"):
        return None
    if text == "from-oof":
        return text
    try:
        weights = [float(v) for v in text.split(",")]
    except ValueError:
        raise FatError(f"--weights: equal, from-oof or {n} numbers a,b,...; got {text!r}") from None
    if len(weights) != n:
        raise FatError(f"--weights: {len(weights)} numbers for {n} sources")
    return weights


SOURCES = click.argument("sources", nargs=-1, required=True)
STORE = store_option("Default: each run's store.")
HOW = click.option(
    "--how",
    type=click.Choice(["mean", "gmean", "rank"]),
    default="mean",
    show_default=True,
    help="How members combine: arithmetic mean, geometric mean, or mean of each clip's class "
    "ranks.",
)


@click.command()
@SOURCES
@click.option("--split", default="test", show_default=True, help="Store split to predict.")
@STORE
@HOW
@click.option(
    "--weights",
    default="equal",
    show_default=True,
    help="equal; from-oof (fitted on the sources' out-of-fold predictions, CV directories "
    "only); or one number per source, a,b,...",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Submission CSV.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@settings_options(PredictConfig)
def ensemble(sources, split, store, how, weights, out, quiet, **kw) -> None:
    """Combine runs, cross-validations (their folds) and checkpoints (RUN:best, RUN:last,
    RUN:swa, RUN:ema) into one submission; on a labelled split also print each source's lwlrap and
    the ensemble's."""
    from fat.core.submission import write_submission
    from fat.predict.ensemble import Source, oof_weights, predict_ensemble

    cfg = PredictConfig.from_dict(given_settings(PredictConfig, kw))
    parsed = [Source.parse(s, cfg.checkpoint) for s in sources]
    w = parse_weights(weights, len(parsed))
    if w == "from-oof":
        w = oof_weights(parsed, how)
        click.echo("weights from out-of-fold lwlrap: " + ", ".join(f"{x:.2f}" for x in w))
    result = predict_ensemble(parsed, split, store, how, w, cfg, progress=not quiet)
    write_submission(out, result.clip_ids, result.vocabulary, result.probs)
    scores = result.evaluate()
    if scores is not None:
        for name, evaluation in scores.items():
            click.echo(f"{name:<40} lwlrap {evaluation.lwlrap:.4f}")
    click.echo(f"wrote {out}: {len(result.clip_ids)} clips, {len(parsed)} sources, {how}")


@click.command("pseudo-label")
@SOURCES
@STORE
@HOW
@click.option(
    "--temperature",
    type=float,
    default=1.0,
    show_default=True,
    help="Logits divided by it: < 1 sharpens the teacher's scores, > 1 softens them.",
)
@click.option(
    "--blend",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of the given labels in each target (0: the teacher's alone).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Targets CSV.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@settings_options(PredictConfig)
def pseudo_label(sources, store, how, temperature, blend, out, quiet, **kw) -> None:
    """Soft targets for every noisy clip from a teacher (runs, CV directories, RUN:KIND),
    for `fat train --noisy-targets OUT`: its probabilities sharpened by a temperature and
    blended with the given labels."""
    from fat.core.submission import write_submission
    from fat.predict.ensemble import Source
    from fat.predict.pseudo_labels import teacher_targets

    cfg = PredictConfig.from_dict(given_settings(PredictConfig, kw))
    parsed = [Source.parse(s, cfg.checkpoint) for s in sources]
    ids, vocabulary, targets = teacher_targets(
        parsed, "noisy", store, how, temperature, blend, cfg, progress=not quiet
    )
    write_submission(out, ids, vocabulary, targets)
    click.echo(
        f"wrote {out}: soft targets for {len(ids)} noisy clips (mean target mass per clip "
        f"{targets.sum(axis=1).mean():.2f})"
    )

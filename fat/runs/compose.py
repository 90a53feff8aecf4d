"""A run's settings, composed in one place for every command that starts or continues one
(`fat train`, `fat cv`, the demo): a recipe, then a settings file, then flags, each over the
one before; and the one rule for continuing a run or a cross-validation (only settings marked
resumable may change)."""

from pathlib import Path
from typing import Any

from fat.core.errors import FatError
from fat.core.settings import read_settings_file
from fat.runs.checkpoint import load_checkpoint, saved_experiment
from fat.runs.directory import RunDirectory, absolute_store
from fat.runs.recipes import load_recipe
from fat.runs.settings import ExperimentConfig, RunOptions, run_settings


def compose_settings(
    recipe: str | None = None,
    config_file: Path | None = None,
    experiment_flags: dict[str, Any] | None = None,
    option_flags: dict[str, Any] | None = None,
) -> tuple[ExperimentConfig, RunOptions]:
    """The settings of a new run: `recipe`'s experiment, then `config_file`'s settings
    ({"experiment": ..., "options": ...}), then the flags given, each overriding the last."""
    experiment, options = {}, {}
    if config_file is not None:
        experiment, options = run_settings(read_settings_file(config_file), str(config_file))
    named = load_recipe(recipe).experiment if recipe is not None else {}
    return (
        ExperimentConfig.from_dict({**named, **experiment, **(experiment_flags or {})}),
        RunOptions.from_dict({**options, **(option_flags or {})}),
    )


def continued_experiment(
    saved: dict[str, Any], changes: dict[str, Any], what: str
) -> ExperimentConfig:
    """A saved experiment with `changes` applied; FatError (naming `what`) when a change is
    to a setting a continued run may not change."""
    before = ExperimentConfig.from_dict(saved)
    after = before.replace(**changes)
    before.check_resumable_as(after, what)
    return after


def saved_options(options: RunOptions) -> RunOptions:
    """`options` as a run saves them: a local store as an absolute path, found again from any
    working directory."""
    return options.replace(store=absolute_store(options.store))


def resume_settings(
    run_dir: Path | str,
    experiment_changes: dict | None = None,
    option_changes: dict | None = None,
) -> tuple[ExperimentConfig, RunOptions]:
    """The settings to resume the run in `run_dir` with: the saved experiment and options,
    with `experiment_changes` (only resumable settings, e.g. more epochs) and
    `option_changes` (any: a moved store, another device) applied. The run's directory is
    `run_dir` and its store where `RunDirectory.store` finds it, wherever both were when it
    started."""
    run = RunDirectory.existing(run_dir)
    with run.lock():  # a run being trained now: say so, not "no checkpoint yet"
        pass
    if not run.has_checkpoint():
        raise FatError(
            f"--resume: {run.path} has no checkpoint yet (it stopped before its first epoch "
            "ended): start it again without --resume"
        )
    last = run.checkpoint("last")
    saved = saved_experiment(load_checkpoint(last), last)
    experiment = saved.replace(**(experiment_changes or {}))
    saved.check_resumable_as(experiment, "--resume")
    _, options = run.read_settings()
    changes = dict(option_changes or {})
    if "store" not in changes:
        changes["store"] = run.store()
    options = RunOptions.from_dict({**options, **changes, "out": str(run.path)})
    return experiment, options

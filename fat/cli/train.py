"""`fat train`: a thin layer over `fat.train.loop.train`; its options are the fields of
`ExperimentConfig` and `RunOptions`, composed with a recipe and a settings file by
`fat.runs.compose`."""

import json
import shlex

import click

from fat.cli.options import (
    SectionedCommand,
    from_environment,
    given_settings,
    sectioned_option,
    settings_file_option,
    settings_flags,
    settings_options,
)
from fat.core.errors import FatError
from fat.runs.settings import SECTIONS, ExperimentConfig, RunOptions, resumable_settings

RECIPE = sectioned_option(
    "--recipe",
    default=None,
    help="Start from a named recipe's settings (fat train --list-recipes); flags override it.",
)
LIST_RECIPES = sectioned_option("--list-recipes", is_flag=True, help="List the recipes.")
RUN_SETTINGS_FILE = settings_file_option(
    'settings, {"experiment": {...}, "options": {...}} as --print-config writes it and every '
    "run's config.json holds"
)
PRINT_CONFIG = sectioned_option(
    "--print-config", is_flag=True, help="Print the settings as JSON instead of training."
)


def echo_recipes() -> None:
    """Each recipe with the flags that give its settings (pasted after `fat train`, they
    train what `--recipe NAME` trains)."""
    from fat.runs.recipes import list_recipes

    for r in list_recipes():
        full = r.config().to_dict()
        named = {k: full[k] for k in r.experiment}
        click.echo(
            f"{r.name}: {r.description}\n  {shlex.join(settings_flags(ExperimentConfig, named))}"
        )


def echo_settings(experiment: ExperimentConfig, options: RunOptions) -> None:
    click.echo(
        json.dumps({"experiment": experiment.to_dict(), "options": options.to_dict()}, indent=1)
    )


@click.command(cls=SectionedCommand, sections=SECTIONS)
@RECIPE
@RUN_SETTINGS_FILE
@sectioned_option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out from its last epoch with its saved settings. Options "
    "may change (a moved --store, another --device); of the experiment only "
    f"{', '.join('--' + s.replace('_', '-') for s in resumable_settings())}.",
)
@PRINT_CONFIG
@LIST_RECIPES
@sectioned_option("--list-models", is_flag=True, help="List the models and their settings.")
@settings_options(RunOptions, ExperimentConfig)
def train(config_file, print_config, resume, list_models, recipe, list_recipes, **kw) -> None:
    """Train a tagger on crops streamed from the store."""
    experiment_given = given_settings(ExperimentConfig, kw)
    options_given = given_settings(RunOptions, kw)
    if list_recipes:
        echo_recipes()
        return
    if list_models:
        from fat.models import list_models as names
        from fat.models.registry import model_entry

        for name in names():
            entry = model_entry(name)
            settings = ", ".join(f"{k}={v!r}" for k, v in entry.settings().items()) or "none"
            click.echo(f"{name}: {entry.description}\n  settings: {settings}")
        return
    if resume:
        from fat.runs.compose import resume_settings

        if config_file is not None or recipe is not None:
            raise FatError("--resume uses the run's saved settings; drop --config and --recipe")
        if "out" not in options_given:
            raise FatError("--resume needs --out, the run to continue")
        # A FAT_ variable is a default: the run's saved store and device win over it.
        for name in from_environment(list(options_given)):
            del options_given[name]
        experiment, options = resume_settings(options_given["out"], experiment_given, options_given)
    else:
        from fat.runs.compose import compose_settings

        experiment, options = compose_settings(recipe, config_file, experiment_given, options_given)
    if print_config:
        echo_settings(experiment, options)
        return
    from fat.train.loop import train as run_training

    summary = run_training(experiment, options, resume=resume)
    if summary.epochs_run:
        click.echo(summary.line())

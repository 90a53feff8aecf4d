"""`fat train`: a thin layer over `fat.train.loop.train`; its options are the fields of
`ExperimentConfig` and `RunOptions`."""

import json

import click

from fat.cli.options import from_environment, given_settings, settings_file_option, settings_options
from fat.core.errors import FatError
from fat.core.settings import read_settings_file
from fat.runs.settings import ExperimentConfig, RunOptions, resumable_settings, run_settings

RECIPE = click.option(
    "--recipe",
    default=None,
    help="Start from a named recipe's settings (fat train --list-recipes); flags override it.",
)
LIST_RECIPES = click.option("--list-recipes", is_flag=True, help="List the recipes.")


def recipe_settings(name: str | None) -> dict:
    """The experiment settings a recipe names ({} for none)."""
    if name is None:
        return {}
    from fat.runs.recipes import load_recipe

    return load_recipe(name).experiment


def echo_recipes() -> None:
    from fat.runs.recipes import list_recipes

    for r in list_recipes():
        settings = " ".join(
            f"--{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in r.experiment.items()
        )
        click.echo(f"{r.name}: {r.description}\n  {settings or '(the defaults)'}")


@click.command()
@settings_options(RunOptions, ExperimentConfig)
@settings_file_option(
    'settings, {"experiment": {...}, "options": {...}} as --print-config writes it and every '
    "run's config.json holds"
)
@click.option(
    "--print-config", is_flag=True, help="Print the settings as JSON instead of training."
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out from its last epoch with its saved settings. Options "
    "may change (a moved --store, another --device); of the experiment only "
    f"{', '.join('--' + s.replace('_', '-') for s in resumable_settings())}.",
)
@click.option("--list-models", is_flag=True, help="List the models and their settings.")
@RECIPE
@LIST_RECIPES
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
        from fat.train.loop import resume_settings

        if config_file is not None or recipe is not None:
            raise FatError("--resume uses the run's saved settings; drop --config and --recipe")
        if "out" not in options_given:
            raise FatError("--resume needs --out, the run to continue")
        # A FAT_ variable is a default: the run's saved store and device win over it.
        for name in from_environment(list(options_given)):
            del options_given[name]
        experiment, options = resume_settings(options_given["out"], experiment_given, options_given)
    else:
        saved_experiment, saved_options = ({}, {})
        if config_file is not None:
            saved_experiment, saved_options = run_settings(
                read_settings_file(config_file), str(config_file)
            )
        named = recipe_settings(recipe)
        experiment = ExperimentConfig.from_dict({**named, **saved_experiment, **experiment_given})
        options = RunOptions.from_dict({**saved_options, **options_given})
    if print_config:
        settings = {"experiment": experiment.to_dict(), "options": options.to_dict()}
        click.echo(json.dumps(settings, indent=1))
        return
    from fat.train.loop import train as run_training

    summary = run_training(experiment, options, resume=resume)
    if summary.epochs_run:
        click.echo(summary.line())

"""Named recipes (`fat train --recipe`, `--list-recipes`)."""

import json

from click.testing import CliRunner

from fat.cli import main
from fat.runs.recipes import list_recipes, load_recipe
from fat.runs.settings import ExperimentConfig

REPORT = {"baseline-2019", "mixup-cyclic", "swa", "gcnn-2017"}  # the seed report's runs


def test_every_recipe_loads_and_the_default_recipe_is_the_default():
    recipes = {r.name: r for r in list_recipes()}
    assert REPORT | {"default", "strong"} <= set(recipes)
    assert all(r.description for r in recipes.values())
    assert recipes["default"].config() == ExperimentConfig()  # `fat train` with no flags
    baseline = recipes["baseline-2019"].config()
    assert (baseline.epochs, baseline.batch_size, baseline.lr) == (10, 32, 3e-4)
    assert (baseline.schedule, baseline.mixup, baseline.width) == ("constant", 0.0, 1.0)
    assert recipes["swa"].config().swa_start == 30
    assert recipes["gcnn-2017"].config().arch == "gcnn_vanishing"


def test_a_recipe_sets_what_it_names_and_flags_override_it():
    runner = CliRunner()
    done = runner.invoke(main, ["train", "--recipe", "swa", "--epochs", "50", "--print-config"])
    assert done.exit_code == 0, done.output
    experiment = json.loads(done.output)["experiment"]
    swa = load_recipe("swa").experiment
    assert experiment["epochs"] == 50 and experiment["swa_start"] == swa["swa_start"]
    assert experiment["schedule"] == "cyclic" and experiment["seed"] == ExperimentConfig().seed
    listed = runner.invoke(main, ["train", "--list-recipes"])
    assert listed.exit_code == 0 and "baseline-2019:" in listed.output
    assert "--train-splits curated" in listed.output
    unknown = runner.invoke(main, ["train", "--recipe", "fast", "--print-config"])
    assert unknown.exit_code == 1
    assert "unknown recipe 'fast'; recipes: baseline-2019" in unknown.output

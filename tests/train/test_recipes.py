"""Named recipes (`fat train --recipe`, `--list-recipes`)."""

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.runs.recipes import DEFINING, list_recipes, load_recipe, read_recipe
from fat.runs.settings import ExperimentConfig

DOCS = Path(__file__).parents[2] / "docs" / "recipes.md"
NO_SPECAUGMENT = {"time_masks": 0, "freq_masks": 0}
# What the seed report defines each of its runs by (its README), setting by setting.
REPORTED = {
    "baseline-2019": dict(
        arch="cnn", epochs=10, batch_size=32, lr=3e-4, schedule="constant", mixup=0.0,
        train_splits=["curated"], swa_start=0, ema=0.0, **NO_SPECAUGMENT,
    ),
    "mixup-cyclic": dict(
        arch="cnn", epochs=40, batch_size=32, lr=3e-4, schedule="cyclic", mixup=0.4,
        train_splits=["curated"], swa_start=0, ema=0.0, **NO_SPECAUGMENT,
    ),
    "swa": dict(
        arch="cnn", epochs=40, batch_size=32, lr=3e-4, schedule="cyclic", mixup=0.4,
        train_splits=["curated"], swa_start=30, ema=0.0, **NO_SPECAUGMENT,
    ),
    "gcnn-2017": dict(
        arch="gcnn_vanishing", epochs=40, batch_size=32, schedule="cyclic", mixup=0.4,
        train_splits=["curated", "noisy"], **NO_SPECAUGMENT,
    ),
}  # fmt: skip

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


@pytest.mark.parametrize("name", sorted(REPORTED))
def test_the_report_recipes_train_what_the_report_defines(name):
    settings = load_recipe(name).config().to_dict()
    assert {k: settings[k] for k in REPORTED[name]} == REPORTED[name]


def recipe_flags() -> dict[str, list[str]]:
    """Each recipe's flags as `fat train --list-recipes` prints them."""
    listed = CliRunner().invoke(main, ["train", "--list-recipes"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    return {
        line.split(":")[0]: shlex.split(lines[i + 1])
        for i, line in enumerate(lines)
        if not line.startswith(" ")
    }


def test_listed_flags_paste_back_into_the_recipe_and_the_docs_show_them():
    runner, docs = CliRunner(), DOCS.read_text()
    flags = recipe_flags()
    assert set(flags) == {r.name for r in list_recipes()}
    for name, args in flags.items():
        pasted = runner.invoke(main, ["train", *args, "--print-config"])
        named = runner.invoke(main, ["train", "--recipe", name, "--print-config"])
        assert pasted.exit_code == 0, f"{name}: {pasted.output}"
        assert json.loads(pasted.output) == json.loads(named.output), name
        assert f"`{shlex.join(args)}`" in docs, f"docs/recipes.md does not show {name}'s flags"


def test_a_recipe_that_leaves_a_defining_setting_to_the_defaults_is_refused(tmp_path):
    for recipe in list_recipes():
        assert set(DEFINING) <= set(recipe.experiment), recipe.name
    path = tmp_path / "mine.toml"
    path.write_text('description = "x"\n[experiment]\narch = "cnn"\nepochs = 3\n')
    with pytest.raises(FatError, match=f"{path}: a recipe names every defining setting; missing"):
        read_recipe(path)

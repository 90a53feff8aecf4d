"""Named recipes: experiment settings kept as TOML files in `fat/recipes/` (a description and
an [experiment] table), for `fat train --recipe NAME` and `fat cv --recipe NAME`. A recipe
sets what it names; flags and a --config file given with it override it. Every recipe names
each of `DEFINING`, so that a change of the defaults never changes what a recipe trains.
`default` is what `fat train` uses with no flags (the ExperimentConfig defaults; a test keeps
them equal)."""

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fat.core.errors import FatError
from fat.runs.settings import ExperimentConfig

RECIPES_DIR = Path(__file__).parents[1] / "recipes"
DEFINING = (
    "arch",
    "width",
    "train_splits",
    "loss",
    "epochs",
    "batch_size",
    "crop_frames",
    "optimizer",
    "lr",
    "lr_min",
    "schedule",
    "weight_decay",
    "mixup",
    "mixer",
    "time_masks",
    "freq_masks",
    "swa_start",
    "ema",
    "sampler",
)


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    experiment: dict[str, Any]  # only the settings the recipe names

    def config(self) -> ExperimentConfig:
        return ExperimentConfig.from_dict(self.experiment)


def read_recipe(path: Path) -> Recipe:
    try:
        values = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise FatError(f"{path}: unreadable recipe ({error})") from None
    unknown = sorted(set(values) - {"description", "experiment"})
    if unknown or not isinstance(values.get("experiment", {}), dict):
        raise FatError(f"{path}: a recipe holds description and [experiment]; got {unknown}")
    unnamed = [k for k in DEFINING if k not in values.get("experiment", {})]
    if unnamed:
        raise FatError(f"{path}: a recipe names every defining setting; missing {unnamed}")
    recipe = Recipe(path.stem, str(values.get("description", "")), values.get("experiment", {}))
    recipe.config()  # a recipe of unknown or impossible settings fails here, by name
    return recipe


def list_recipes() -> list[Recipe]:
    return [read_recipe(path) for path in sorted(RECIPES_DIR.glob("*.toml"))]


def load_recipe(name: str) -> Recipe:
    path = RECIPES_DIR / f"{name}.toml"
    if not path.is_file():
        names = ", ".join(p.stem for p in sorted(RECIPES_DIR.glob("*.toml")))
        raise FatError(f"unknown recipe {name!r}; recipes: {names} (fat train --list-recipes)")
    return read_recipe(path)

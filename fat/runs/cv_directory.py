"""A cross-validation directory on disk: its settings, one run directory per fold, and the
out-of-fold predictions with their scores.

    CV_DIR/cv.json              the experiment (without fold), the options, the number of folds,
                                the store relative to CV_DIR
    CV_DIR/fold0 .. foldK-1/    ordinary run directories (`fat.runs.directory`)
    CV_DIR/foldI/oof.csv        fold I's probabilities for the clips it held out
    CV_DIR/oof.csv              every clip of the folded split, from the fold that held it out
    CV_DIR/oof_summary.json     OOF lwlrap overall and per fold
    CV_DIR/oof_per_class.csv    OOF lwlrap per class
"""

import csv
from pathlib import Path
from typing import Any

from fat.core.errors import FatError
from fat.core.files import atomic_write
from fat.core.lock import ExclusiveLock
from fat.runs.directory import (
    EVAL,
    LOCK,
    RunDirectory,
    locate_store,
    read_json,
    relative_to,
    write_json,
)

CV_SETTINGS = "cv.json"
OOF = "oof.csv"
OOF_SUMMARY = "oof_summary.json"
OOF_PER_CLASS = "oof_per_class.csv"


def is_cv_directory(path: Path | str) -> bool:
    return (Path(path) / CV_SETTINGS).is_file()


class CVDirectory:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    def fold(self, i: int) -> RunDirectory:
        return RunDirectory(self.path / f"fold{i}")

    def fold_oof(self, i: int) -> Path:
        return self.fold(i).path / OOF

    @property
    def oof(self) -> Path:
        return self.path / OOF

    def write_settings(self, settings: dict[str, Any]) -> None:
        """cv.json: {"folds", "experiment", "options"}, and the store relative to here."""
        self.path.mkdir(parents=True, exist_ok=True)
        store = settings["options"].get("store", "")
        write_json(
            self.path / CV_SETTINGS,
            {**settings, "store_from_cv": relative_to(store, self.path)},
        )

    def read_settings(self) -> dict[str, Any]:
        return read_json(self.path / CV_SETTINGS, "not a cross-validation directory?")

    def store(self) -> str:
        """The store the cross-validation trained from, found from any working directory."""
        settings = self.read_settings()
        saved = str(settings.get("options", {}).get("store", ""))
        return locate_store(saved, self.path, settings.get("store_from_cv"), f"cv {self.path}")

    def lock(self) -> ExclusiveLock:
        """Held by the process running this cross-validation, before it writes anything."""
        self.path.mkdir(parents=True, exist_ok=True)
        return ExclusiveLock(self.path / LOCK, self.path, "running this cross-validation")

    def eval_dir(self, split: str) -> Path:
        return self.path / EVAL / split

    def folds(self) -> list[RunDirectory]:
        """The fold runs, in order; FatError for a CV directory with a fold never started."""
        k = int(self.read_settings()["folds"])
        runs = [self.fold(i) for i in range(k)]
        missing = [r.path.name for r in runs if not r.has_checkpoint()]
        if missing:
            raise FatError(
                f"{self.path}: fold(s) {', '.join(missing)} not trained yet; run `fat cv` again "
                "with the same settings to finish"
            )
        return runs

    def write_scores(self, summary: dict[str, Any], per_class: list[dict[str, Any]]) -> None:
        write_json(self.path / OOF_SUMMARY, summary)
        columns = ["class", "lwlrap", "weight", "positives"]
        with atomic_write(self.path / OOF_PER_CLASS, newline="") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(per_class)

    def read_summary(self) -> dict[str, Any]:
        return read_json(self.path / OOF_SUMMARY, "written when every fold has trained")


def run_paths(path: Path | str) -> list[Path]:
    """The run directories `path` stands for: a cross-validation directory's trained folds,
    or `path` itself."""
    if not is_cv_directory(path):
        return [Path(path)]
    return [run.path for run in CVDirectory(path).folds()]

"""The FSDKaggle2019 directory layout: which CSV and which folder make each split."""

from dataclasses import dataclass
from pathlib import Path

from fat.core.errors import FatError


@dataclass(frozen=True)
class SplitLayout:
    name: str  # split name inside a store
    csv: str  # clip list (with labels for the train splits)
    folder: str
    labelled: bool  # whether `csv` carries a labels column


SPLITS = {
    "curated": SplitLayout("curated", "train_curated.csv", "train_curated", True),
    "noisy": SplitLayout("noisy", "train_noisy.csv", "train_noisy", True),
    "test": SplitLayout("test", "sample_submission.csv", "test", False),
}
SAMPLE_SUBMISSION = "sample_submission.csv"


def split_layout(name: str) -> SplitLayout:
    try:
        return SPLITS[name]
    except KeyError:
        raise FatError(f"unknown split {name!r}; choose from {', '.join(SPLITS)}") from None


def check_data_dir(data_dir: Path, layout: SplitLayout) -> None:
    """A clear error when the directory does not look like FSDKaggle2019 for this split."""
    if not Path(data_dir).is_dir():
        raise FatError(f"{data_dir}: no such data directory")
    if not (Path(data_dir) / layout.folder).is_dir():
        raise FatError(
            f"{data_dir}: no {layout.folder}/ folder for split {layout.name!r} "
            "(expected the FSDKaggle2019 layout)"
        )

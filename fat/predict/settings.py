"""How a trained run is applied: which checkpoint, how windows are combined, where it runs
(`PredictConfig`), and how `fat detect` scores a recording over time (`DetectConfig`). No
torch here: the CLI builds its options from these records."""

from dataclasses import dataclass

from fat.core.device import DEVICE_HELP, check_device_name
from fat.core.errors import FatError
from fat.core.settings import Settings, setting
from fat.runs.directory import CHECKPOINT_HELP, checkpoint_kind


@dataclass(frozen=True)
class PredictConfig(Settings):
    KIND = "prediction settings"

    checkpoint: str = setting("best", CHECKPOINT_HELP)
    tta: str = setting(
        "mean", "How a clip's sliding windows are combined.", choices=("mean", "max")
    )
    overlap: float = setting(0.5, "Overlap of consecutive windows.", low=0.0, below=1.0)
    batch_size: int = setting(64, "Windows per forward pass.", low=1, high=65536)
    device: str = setting("auto", f"Where the model runs: {DEVICE_HELP}")

    def problems(self) -> list[str]:
        return applying_problems(self.checkpoint, self.device)


def applying_problems(checkpoint: str, device: str) -> list[str]:
    """What is wrong with the settings every way of applying a run shares."""
    problems = []
    try:
        checkpoint_kind(checkpoint)
    except FatError as e:
        problems.append(str(e))
    reason = check_device_name(device)
    return problems + ([reason] if reason else [])


METHODS = ("auto", "shared", "windows", "frames")  # fat.predict.detect's scorers


@dataclass(frozen=True)
class DetectConfig(Settings):
    """How `fat detect` scores a recording over time."""

    KIND = "detection settings"

    hop_seconds: float = setting(
        0.25,
        "Time between window starts: the resolution of the scores over time.",
        above=0.0,
        high=60.0,
    )
    method: str = setting(
        "auto",
        "How windows are scored: shared (one convolutional pass per block, windows pooled from "
        "it), windows (each scored alone, as fat predict does), frames (the model's own frame "
        "outputs: the GCNN), or auto.",
        choices=METHODS,
    )
    combine: str = setting(
        "auto",
        "How the windows covering a time step combine: min (the step is the class's only where "
        "every window around it says so: sharp onsets and offsets from models that pool over "
        "a window), mean (as fat predict averages a clip's windows: smoother, but events "
        "widen by about half a window at each end), or auto: min for windows longer than "
        "0.4 s, else mean (and for frame outputs).",
        choices=("auto", "min", "mean"),
    )
    block_seconds: float = setting(
        60.0,
        "Audio decoded and featurized at a time: memory follows it, not the file's length.",
        low=1.0,
        high=3600.0,
    )
    checkpoint: str = setting("best", CHECKPOINT_HELP)
    batch_size: int = setting(
        64, "Windows per forward pass (windows and frames methods).", low=1, high=65536
    )
    device: str = setting("auto", f"Where the model runs: {DEVICE_HELP}")

    def problems(self) -> list[str]:
        return applying_problems(self.checkpoint, self.device)

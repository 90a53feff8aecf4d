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
    overlap: float = setting(0.5, "Overlap of consecutive windows, in [0, 1).")
    batch_size: int = setting(64, "Windows per forward pass.")
    device: str = setting("auto", f"Where the model runs: {DEVICE_HELP}")

    def problems(self) -> list[str]:
        problems = []
        if not 0 <= self.overlap < 1:
            problems.append(f"overlap must be in [0, 1), got {self.overlap}")
        if self.batch_size < 1:
            problems.append("batch_size must be >= 1")
        try:
            checkpoint_kind(self.checkpoint)
        except FatError as e:
            problems.append(str(e))
        reason = check_device_name(self.device)
        if reason:
            problems.append(reason)
        return problems


METHODS = ("auto", "shared", "windows", "frames")  # fat.predict.detect's scorers


@dataclass(frozen=True)
class DetectConfig(Settings):
    """How `fat detect` scores a recording over time."""

    KIND = "detection settings"

    hop_seconds: float = setting(
        0.25, "Time between window starts: the resolution of the scores over time."
    )
    method: str = setting(
        "auto",
        "How windows are scored: shared (one convolutional pass per block, windows pooled from "
        "it), windows (each scored alone, as fat predict does), frames (the model's own frame "
        "outputs: the GCNN), or auto.",
        choices=METHODS,
    )
    block_seconds: float = setting(
        60.0, "Audio decoded and featurized at a time: memory follows it, not the file's length."
    )
    checkpoint: str = setting("best", CHECKPOINT_HELP)
    batch_size: int = setting(64, "Windows per forward pass (windows and frames methods).")
    device: str = setting("auto", "Where the model runs: auto, cpu, cuda or cuda:N.")

    def problems(self) -> list[str]:
        problems = []
        if not 0 < self.hop_seconds <= 60 or not 1 <= self.block_seconds <= 3600:
            problems.append("need 0 < hop_seconds <= 60 and 1 <= block_seconds <= 3600")
        if self.batch_size < 1:
            problems.append("batch_size must be >= 1")
        try:
            checkpoint_kind(self.checkpoint)
        except FatError as e:
            problems.append(str(e))
        return problems

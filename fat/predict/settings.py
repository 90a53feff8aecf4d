"""How a trained run is applied: which checkpoint, how windows are combined, where it runs."""

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

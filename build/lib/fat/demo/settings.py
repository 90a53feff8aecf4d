"""What `fat demo` runs: the data it generates and the model it trains."""

from dataclasses import dataclass

from fat.core.settings import Settings, setting


@dataclass(frozen=True)
class DemoConfig(Settings):
    KIND = "demo settings"

    seed: int = setting(0, "Seed of the generated data.")
    scale: float = setting(1.0, "Multiply clip counts (120 curated, 240 noisy, 60 test at 1.0).")
    workers: int | None = setting(None, "Featurize workers.", derived="all cores")
    epochs: int = setting(15, "Training epochs.")
    width: float = setting(0.25, "CNN channel multiplier.")
    quiet: bool = setting(False, "No progress bars or per-epoch lines (the stage lines stay).")

    def problems(self) -> list[str]:
        if self.scale <= 0 or self.epochs < 1 or self.width <= 0 or self.seed < 0:
            return ["need scale > 0, epochs >= 1, width > 0, seed >= 0"]
        return []

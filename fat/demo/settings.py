"""What `fat demo` runs: the data it generates and the model it trains."""

from dataclasses import dataclass

from fat.core.settings import MAX_WORKERS, MAX_WORKERS_HELP, Settings, setting


@dataclass(frozen=True)
class DemoConfig(Settings):
    KIND = "demo settings"

    # Ranges as `fat train`'s and `fat featurize`'s, which the demo runs.
    seed: int = setting(0, "Seed of the generated data.", low=0, high=2**32 - 1)
    scale: float = setting(
        1.0,
        "Multiply clip counts (120 curated, 240 noisy, 60 test at 1.0).",
        above=0.0,
        high=100.0,  # 42,000 generated clips: a demo, not a data set
    )
    workers: int | None = setting(
        None, f"Featurize workers. {MAX_WORKERS_HELP}", low=1, high=MAX_WORKERS, derived="all cores"
    )
    epochs: int = setting(15, "Training epochs.", low=1, high=100_000)
    width: float = setting(0.25, "CNN channel multiplier.", above=0.0, high=4.0)
    quiet: bool = setting(False, "No progress bars or per-epoch lines (the stage lines stay).")

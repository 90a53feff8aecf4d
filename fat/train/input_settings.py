"""`InputBenchConfig`, the settings of `fat bench input`: apart from the benchmark so that the
CLI builds its options without importing torch."""

from dataclasses import dataclass

from fat.core.settings import MAX_WORKERS, MAX_WORKERS_HELP, Settings, setting
from fat.runs.settings import batch_problems


@dataclass(frozen=True)
class InputBenchConfig(Settings):
    KIND = "input benchmark settings"

    splits: tuple[str, ...] = setting(("curated",), "Store splits the crops come from.")
    loaders: tuple[str, ...] = setting(("dali", "torch"), "Loaders to measure: dali, torch.")
    # As `fat train`'s: the benchmark trains on a plan of these crops.
    batch_size: int = setting(64, "Crops per batch.", low=1, high=65536)
    crop_frames: int = setting(128, "Frames per crop.", low=8, high=100_000)
    batches: int = setting(100, "Timed batches per path and round.", low=1, high=100_000)
    rounds: int = setting(
        3, "Rounds of all paths; each figure is the median over them.", low=1, high=100
    )
    memory_budget_gb: float | None = setting(
        None,
        "RAM for the splits, as in `fat train`.",
        low=0.0,
        high=1e6,
        derived="available RAM minus 2 GiB, 1 GiB per loader worker and 10%",
    )
    workers: int = setting(
        0,
        f"Loader worker processes, as in `fat train`. {MAX_WORKERS_HELP}",
        low=0,
        high=MAX_WORKERS,
    )
    data_device: str = setting(
        "auto",
        "Also measure crops gathered in GPU memory: auto (when there is a GPU), cuda, cpu (no).",
        choices=("auto", "cpu", "cuda"),
    )

    def problems(self) -> list[str]:
        problems = []
        unknown = sorted(set(self.loaders) - {"dali", "torch"})
        if unknown or not self.loaders:
            problems.append(f"loaders must be among dali, torch; got {list(self.loaders)}")
        return problems + batch_problems(self.batch_size, self.crop_frames, self.batches, "batches")

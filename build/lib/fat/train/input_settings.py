"""`InputBenchConfig`, the settings of `fat bench input`: apart from the benchmark so that the
CLI builds its options without importing torch."""

from dataclasses import dataclass

from fat.core.settings import Settings, setting


@dataclass(frozen=True)
class InputBenchConfig(Settings):
    KIND = "input benchmark settings"

    splits: tuple[str, ...] = setting(("curated",), "Store splits the crops come from.")
    loaders: tuple[str, ...] = setting(("dali", "torch"), "Loaders to measure: dali, torch.")
    batch_size: int = setting(64, "Crops per batch.")
    crop_frames: int = setting(128, "Frames per crop.")
    batches: int = setting(100, "Timed batches per path and round.")
    rounds: int = setting(3, "Rounds of all paths; each figure is the median over them.")
    memory_budget_gb: float | None = setting(
        None,
        "RAM for the splits, as in `fat train`.",
        derived="available RAM minus 2 GiB, 1 GiB per loader worker and 10%",
    )
    workers: int = setting(0, "Loader worker processes, as in `fat train`.")
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
        if min(self.batch_size, self.crop_frames, self.batches, self.rounds) < 1:
            problems.append("batch_size, crop_frames, batches and rounds must be >= 1")
        if self.workers < 0 or (self.memory_budget_gb or 0) < 0:
            problems.append("workers and memory_budget_gb must be >= 0")
        return problems

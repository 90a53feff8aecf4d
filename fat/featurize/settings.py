"""How `fat featurize` runs (not what it computes: that is `LogMelConfig`)."""

from dataclasses import dataclass

from fat.core.device import check_device_name
from fat.core.errors import FatError
from fat.core.ids import parse_shard
from fat.core.settings import MAX_WORKERS, MAX_WORKERS_HELP, Settings, setting
from fat.store.layout import COMPRESSIONS


@dataclass(frozen=True)
class FeaturizeOptions(Settings):
    KIND = "featurize options"

    workers: int | None = setting(
        None,
        "Workers decoding and computing: threads, or spawned processes past 4 "
        f"(where threads stop scaling). {MAX_WORKERS_HELP}",
        low=1,
        high=MAX_WORKERS,
        derived="all cores",
        short="-j",
    )
    device: str = setting(
        "auto",
        "Where the log-mel runs: cpu, cuda or cuda:N (torch), or auto: CUDA when there is a "
        "GPU and at most 4 workers (measured faster there), else the CPU.",
    )
    store_format: str | None = setting(
        None,
        "Format of a new store whose name has no .zarr or .h5 suffix (an existing store's "
        "format is read from its contents).",
        choices=("zarr", "hdf5"),
        flag="--format",
        derived="the suffix (.zarr or .h5), else the existing store's",
    )
    compression: str = setting("none", "Chunk compression (Zarr only).", choices=COMPRESSIONS)
    max_seconds: float = setting(
        600.0,
        "Longest clip decoded, by what its header says; longer files (or headers claiming "
        "absurd rates) are skipped with a reason before any decoding.",
        above=0.0,
        # 2 h: a clip is decoded whole, up to ~4 GB per worker; longer recordings are for
        # `fat detect`, which streams them.
        high=7200.0,
    )
    commit_every: int = setting(
        256,
        "Clips per commit (or every 5 s): what a kill can lose and a rerun redoes.",
        low=1,
        high=100_000,
    )
    overwrite: bool = setting(False, "Recompute the split from scratch.")
    strict: bool = setting(False, "Exit 1 if any clip or CSV row is skipped.")
    quiet: bool = setting(False, "No progress bar.", short="-q")
    shard: str = setting(
        "",
        "I/N: featurize only shard I (0-based) of N, the clips whose id's CRC-32 is I mod N, "
        "into this --store; N such jobs cover the split once, and `fat store merge` joins them.",
    )

    def problems(self) -> list[str]:
        problems = []
        reason = check_device_name(self.device)
        if reason:
            problems.append(reason)
        if self.shard:
            try:
                parse_shard(self.shard)
            except FatError as e:
                problems.append(str(e))
        return problems

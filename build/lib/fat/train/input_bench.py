"""How fast the training input reaches a model, on each path, for a store and this machine.

`measure_input` runs the same epoch plan through each path: the loaders with the splits in
RAM, the loaders with the splits on disk (from a cold page cache, then the same batches warm),
the splits resident in GPU memory when there is one, and as the reference one vectorised
numpy gather of the same rows from RAM. Paths are measured in turns over several rounds, each
round's rates divided by that round's reference (the faster of two runs, one before the
paths and one after), so a machine whose speed drifts still gives ratios to trust. Nothing
is trained: the figures are what the input alone delivers.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fat.core.device import torch_device
from fat.core.errors import FatError
from fat.core.progress import progress_bar
from fat.runs.settings import ExperimentConfig
from fat.train.data import TrainingData, load_training_data, memory_budget
from fat.train.input_settings import InputBenchConfig
from fat.train.loaders import LOADERS, CropBatchSource

RAW = "numpy gather from RAM (reference)"


@dataclass(frozen=True)
class PathRate:
    path: str
    crops_per_s: float | None  # median over the rounds; None where the path could not run
    vs_reference: float | None  # median of each round's rate / the reference's in that round
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


WARMUP = 5  # batches before the clock starts: pipeline threads, first prefetch


def timed_rate(
    batches, n: int, warmup: int = WARMUP, sync: Callable[[], None] = lambda: None
) -> float:
    """Crops/s over `n` batches after `warmup` (pipeline start, first prefetch); `sync` waits
    for a device's queued work, so what was timed is what was done."""
    it = iter(batches)
    for _ in range(warmup):
        next(it)
    sync()
    start, crops = time.perf_counter(), 0
    for _ in range(n):
        crops += len(next(it)[0])
    sync()
    return crops / max(time.perf_counter() - start, 1e-9)


def _waiter(device: torch.device) -> Callable[[], None]:
    """A function that waits for `device`'s queued work (nothing to wait for on a CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _drop_page_cache(data: TrainingData) -> bool:
    """Drop the disk-backed splits' files from the page cache; False where that is not
    possible (a layout read through its library)."""
    direct = [s.split.direct for s in data.splits if not s.split.in_memory]
    for reader in direct:
        if reader is not None:
            reader.drop_cache()
    return all(reader is not None for reader in direct)


def measure_input(
    store: Path | str, config: InputBenchConfig | None = None, progress: bool = True
) -> list[PathRate]:
    """Rates of every input path (see the module docstring); paths that cannot run here (the
    splits do not fit the RAM budget, no GPU) are listed with a note instead of a rate."""
    c = config or InputBenchConfig()
    splits, loaders, batches, workers = c.splits, c.loaders, c.batches, c.workers
    experiment = ExperimentConfig(
        train_splits=splits,
        batch_size=c.batch_size,
        crop_frames=c.crop_frames,
        val_fraction=0.0,
        steps_per_epoch=batches + WARMUP + 2,  # the timed batches, the warm-up, the prefetch
    )
    budget, rule = memory_budget(c.memory_budget_gb, workers)
    gpu = torch_device("cpu" if c.data_device == "cpu" else "auto")
    if c.data_device == "cuda" and gpu.type != "cuda":
        raise FatError("--data-device cuda: no CUDA device here")
    rates: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    with (
        load_training_data(store, splits, 0.0, 0, 0) as on_disk,
        load_training_data(store, splits, 0.0, 0, budget) as in_ram,
    ):
        fits = all(s.split.in_memory for s in in_ram.splits)
        if not fits:
            notes[RAW] = f"the splits do not fit the RAM budget, {rule}"
        if gpu.type != "cuda":
            asked = c.data_device == "cpu"
            notes["resident"] = "not asked (--data-device cpu)" if asked else "no CUDA device"
        elif not fits:
            notes[f"resident, {gpu}"] = "needs the splits in RAM first"
        for r in progress_bar(range(c.rounds), desc="input rounds", show=progress):
            epoch = 1 + 2 * r  # each round reads crops no earlier round read

            def rate(kind, data, at_epoch, device=None):
                source = CropBatchSource(data, experiment, at_epoch)
                device = device or torch.device("cpu")
                with LOADERS[kind](source, device, workers) as loader:
                    return timed_rate(loader.epoch(at_epoch), batches, sync=_waiter(device))

            measured = {}
            if fits:
                measured[RAW] = _raw_rate(in_ram, experiment, epoch, batches)
                for kind in loaders:
                    measured[f"{kind}, RAM"] = rate(kind, in_ram, epoch)
                if gpu.type == "cuda":
                    measured[f"resident, {gpu}"] = rate("resident", in_ram, epoch, gpu)
            for kind in loaders:
                if not _drop_page_cache(on_disk):
                    notes[f"{kind}, disk cold"] = "page cache not dropped (no direct reads)"
                measured[f"{kind}, disk cold"] = rate(kind, on_disk, epoch + 1)
                measured[f"{kind}, disk warm"] = rate(kind, on_disk, epoch + 1)
            if fits:  # the reference at its best this round: measured before and after
                measured[RAW] = max(measured[RAW], _raw_rate(in_ram, experiment, epoch, batches))
            for path, value in measured.items():
                rates.setdefault(path, []).append(value)
                if RAW in measured:
                    ratios.setdefault(path, []).append(value / measured[RAW])
    out = [
        PathRate(
            path,
            statistics.median(values),
            statistics.median(ratios[path]) if path in ratios else None,
            notes.get(path, ""),
        )
        for path, values in rates.items()
    ]
    return out + [PathRate(p, None, None, n) for p, n in notes.items() if p not in rates]


def _raw_rate(data: TrainingData, experiment: ExperimentConfig, epoch: int, n: int) -> float:
    """The reference: the rows of the same crops, one numpy fancy-index per split in the batch
    (clips shorter than the crop wrapped like the loaders do), nothing else."""
    source = CropBatchSource(data, experiment, epoch)
    crop = np.arange(experiment.crop_frames)

    def batches():
        for i in range(n + WARMUP):
            split, clip, start = source.samples(epoch, i)
            parts = []
            for k in np.unique(split):
                s = data.splits[int(k)].split
                c, first = clip[split == k], start[split == k]
                rows = s.offsets[c][:, None] + (first[:, None] + crop) % s.lengths[c][:, None]
                parts.append(s.gather_rows(rows))
            yield (parts[0] if len(parts) == 1 else np.concatenate(parts),)

    return timed_rate(batches(), n)


def rate_table(rates: list[PathRate]) -> str:
    """The rates as an aligned text table."""
    rows = [("path", "crops/s", "vs reference", "note")]
    for r in rates:
        speed = "n/a" if r.crops_per_s is None else f"{r.crops_per_s:,.0f}"
        ratio = "" if r.vs_reference is None else f"{r.vs_reference:.2f}"
        rows.append((r.path, speed, ratio, r.note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )

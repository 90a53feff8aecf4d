"""Two ways to stream an epoch's crops into torch: a DALI pipeline (default) and a plain DataLoader.

Both read the same `CropPlan`, so with one seed they yield identical batches. The DALI path
feeds a batch-mode `external_source` with one vectorised gather per batch (a per-sample
Python source tops out near 8,000 crops/s on 2 cores); DALI then prefetches on its own
threads and, on a GPU, lands the batch in device memory. Augmentation (masks, mixup) happens
afterwards in torch on the training device, where it is cheapest.
"""

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from fat.store import open_store
from fat.train.data import CropPlan, TrainingData, crop_plan, gather_crops

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # x (B, mels, T) f16, y (B, C), split (B,)


class CropBatchSource:
    """The batches of one DDP rank, epoch after epoch; picklable for DALI's parallel workers
    (disk-backed splits are re-opened lazily inside each worker, never shared)."""

    def __init__(
        self,
        data: TrainingData,
        store_path: Path | str,
        batch_size: int,
        crop_frames: int,
        seed: int,
        first_epoch: int = 1,
        steps: int = 0,
        split_weights: dict[str, float] | None = None,
        pad: str = "wrap",
        rank: int = 0,
        world: int = 1,
    ):
        self.data = data
        self.store_path = str(store_path)
        self.batch_size = batch_size
        self.crop_frames = crop_frames
        self.seed = seed
        self.first_epoch = first_epoch
        # DDP: every rank draws the same global plan (world batches per step) and takes its own.
        self.steps = steps * world
        self.split_weights = split_weights or {}
        self.pad = pad
        self.rank = rank
        self.world = world

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        data = self.data
        state["data"] = TrainingData(
            [s if s.in_memory else None for s in data.splits],
            data.names,
            data.train,
            data.val,
            data.normalizer,
        )
        return state

    def _splits(self):
        if any(s is None for s in self.data.splits):
            store = open_store(self.store_path, "r")
            self.data.splits = [
                s if s is not None else store.split(name)
                for s, name in zip(self.data.splits, self.data.names, strict=True)
            ]
        return self.data.splits

    @lru_cache(maxsize=2)  # noqa: B019 - one source per run; the cache dies with it
    def plan(self, epoch: int) -> CropPlan:
        self._splits()
        return crop_plan(
            self.data,
            epoch,
            self.seed,
            self.batch_size,
            self.crop_frames,
            self.steps,
            self.split_weights,
        )

    def n_batches(self, epoch: int) -> int:
        return self.plan(epoch).n_batches // self.world

    def samples(self, epoch: int, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(split, clip, start) of this rank's i-th batch of `epoch`."""
        return self.plan(epoch).batch(i * self.world + self.rank)

    def gather(
        self, split: np.ndarray, clip: np.ndarray, start: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        splits = self._splits()
        n_mels = splits[0].feature_config.n_mels
        x = np.empty((len(clip), n_mels, self.crop_frames), np.float16)
        y = np.empty((len(clip), splits[0].labels.shape[1]), np.float32)
        for i in np.unique(split).tolist():
            rows = np.flatnonzero(split == i)
            s = splits[i]
            norm = self.data.normalizer_for(s)
            x[rows] = gather_crops(s, clip[rows], start[rows], self.crop_frames, self.pad, norm)
            y[rows] = s.labels[clip[rows]]
        return x, y, split.astype(np.int32)

    def batch(self, epoch: int, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.gather(*self.samples(epoch, i))

    def __call__(self, info) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """DALI batch-mode callback: `info` is a BatchInfo (iteration, epoch_idx)."""
        epoch = self.first_epoch + info.epoch_idx
        if info.iteration >= self.n_batches(epoch):
            raise StopIteration
        return self.batch(epoch, info.iteration)


class DaliLoader:
    """Epochs of batches from a DALI pipeline; CPU-only mode (`device_id=None`) without CUDA."""

    def __init__(self, source: CropBatchSource, device: torch.device, workers: int = 0):
        from nvidia.dali import fn, pipeline_def
        from nvidia.dali.plugin.pytorch import DALIGenericIterator

        on_gpu = device.type == "cuda"
        # Parallel workers only pay off when a batch means disk reads; a RAM gather is faster
        # in-process than the cost of shipping the batch from a worker.
        parallel = workers > 0 and not all(s.in_memory for s in source.data.splits)

        @pipeline_def(
            batch_size=source.batch_size,
            num_threads=2,
            device_id=(device.index or 0) if on_gpu else None,
            prefetch_queue_depth=2,
            py_num_workers=max(workers, 1),
            py_start_method="spawn",
        )
        def pipeline():
            # In parallel mode, batches computed ahead across the workers: DALI's default of 1
            # would keep every worker but one idle.
            ahead = {"prefetch_queue_depth": 2 * workers} if parallel else {}
            x, y, split = fn.external_source(
                source=source,
                num_outputs=3,
                batch=True,
                batch_info=True,
                parallel=parallel,
                layout=["FT", None, None],
                **ahead,
            )
            if on_gpu:
                x, y, split = x.gpu(), y.gpu(), split.gpu()
            return x, y, split

        self.source = source
        self.pipe = pipeline()
        self.pipe.build()
        self.iterator = DALIGenericIterator([self.pipe], ["x", "y", "split"], auto_reset=True)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """Batches of the pipeline's next epoch, which is `epoch` as long as epochs are taken in
        order from source.first_epoch (the DALI iterator counts them itself)."""
        for out in self.iterator:
            yield out[0]["x"], out[0]["y"], out[0]["split"]


class _RankSamples(torch.utils.data.Dataset):
    def __init__(self, source: CropBatchSource, epoch: int):
        self.source = source
        self.epoch = epoch
        self.n = source.n_batches(epoch) * source.batch_size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int):
        split, clip, start = self.source.samples(self.epoch, k // self.source.batch_size)
        j = k % self.source.batch_size
        x, y, s = self.source.gather(split[j : j + 1], clip[j : j + 1], start[j : j + 1])
        return x[0], y[0], s[0]


class TorchLoader:
    """The plain per-sample DataLoader path, kept as the reference and the fallback."""

    def __init__(self, source: CropBatchSource, device: torch.device, workers: int = 0):
        self.source = source
        self.workers = workers
        self.pin = device.type == "cuda"

    def epoch(self, epoch: int) -> Iterator[Batch]:
        loader = torch.utils.data.DataLoader(
            _RankSamples(self.source, epoch),
            batch_size=self.source.batch_size,
            shuffle=False,
            num_workers=self.workers,
            pin_memory=self.pin,
            # Its own generator: iterating must not draw from the global RNG that dropout
            # uses, or the two loaders would train differently on identical batches.
            generator=torch.Generator().manual_seed(self.source.seed),
        )
        yield from loader


def make_loader(kind: str, source: CropBatchSource, device: torch.device, workers: int = 0):
    return (DaliLoader if kind == "dali" else TorchLoader)(source, device, workers)

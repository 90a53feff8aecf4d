"""Two ways to stream an epoch's crops into torch: a DALI pipeline (default) and a plain DataLoader.

Both read the same `CropPlan`, so with one seed they yield identical batches. The DALI path
feeds a batch-mode `external_source` with one vectorised gather per batch (a per-sample Python
source is far slower, BENCHMARKS.md); DALI then prefetches on its own threads and, on a GPU,
lands the batch in device memory. Augmentation (masks, mixup) happens afterwards in torch on
the training device, where it is cheapest.
"""

from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import torch

from fat.runs.settings import ExperimentConfig
from fat.store.crops import gather_crops
from fat.train.data import CropPlan, TrainingData, crop_plan

# x (B, T, mels) raw store values, y (B, C), split (B,), own frames per crop (B,)
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class CropBatchSource:
    """The batches of one DDP rank, epoch after epoch, as `experiment` draws them. Picklable for
    DALI's parallel workers: disk-backed splits reopen their store in each worker."""

    def __init__(
        self,
        data: TrainingData,
        experiment: ExperimentConfig,
        first_epoch: int = 1,
        rank: int = 0,
        world: int = 1,
    ):
        self.data = data
        self.experiment = experiment
        self.batch_size = experiment.batch_size
        self.first_epoch = first_epoch
        self.rank = rank
        self.world = world

    @lru_cache(maxsize=2)  # noqa: B019 - one source per run; the cache dies with it
    def plan(self, epoch: int) -> CropPlan:
        e = self.experiment
        # DDP: every rank draws the same global plan (world batches per step) and takes its own.
        return crop_plan(
            self.data,
            epoch,
            e.seed,
            e.batch_size,
            e.crop_frames,
            e.steps_per_epoch * self.world,
            e.split_weights,
        )

    def n_batches(self, epoch: int) -> int:
        return self.plan(epoch).n_batches // self.world

    def samples(self, epoch: int, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(split, clip, start) of this rank's i-th batch of `epoch`."""
        return self.plan(epoch).batch(i * self.world + self.rank)

    def gather(
        self, split: np.ndarray, clip: np.ndarray, start: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """(crops, labels, split index, own frames) of these samples (see `Batch`)."""
        splits, crop = self.data.splits, self.experiment.crop_frames
        if (split == split[0]).all():  # one split: its gather is the batch, no copy
            s = splits[int(split[0])]
            x, own = gather_crops(s.split, clip, start, crop)
            return x, s.split.labels[clip].astype(np.float32), split.astype(np.int32), own
        first = splits[0].split
        x = np.empty((len(clip), crop, first.feature_config.n_mels), first.feature_config.dtype)
        y = np.empty((len(clip), len(first.vocabulary)), np.float32)
        own = np.empty(len(clip), np.int32)
        for i in np.unique(split).tolist():
            rows = np.flatnonzero(split == i)
            s = splits[i]
            x[rows], own[rows] = gather_crops(s.split, clip[rows], start[rows], crop)
            y[rows] = s.split.labels[clip[rows]]
        return x, y, split.astype(np.int32), own

    def batch(self, epoch: int, i: int) -> tuple[np.ndarray, ...]:
        return self.gather(*self.samples(epoch, i))

    def __call__(self, info) -> tuple[np.ndarray, ...]:
        """DALI batch-mode callback: `info` is a BatchInfo (iteration, epoch_idx)."""
        epoch = self.first_epoch + info.epoch_idx
        if info.iteration >= self.n_batches(epoch):
            raise StopIteration
        return self.batch(epoch, info.iteration)


class Loader:
    """`epoch(e)` yields the `source.n_batches(e)` batches of epoch e; a context manager."""

    def __init__(self, source: CropBatchSource, device: torch.device, workers: int = 0):
        self.source = source
        self.device = device
        self.workers = workers

    def epoch(self, epoch: int) -> Iterator[Batch]:
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - most loaders hold nothing to release
        """Release pipelines and worker processes."""

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, *_) -> None:
        self.close()


class DaliLoader(Loader):
    """Epochs of batches from a DALI pipeline; CPU-only mode (`device_id=None`) without CUDA.
    DALI counts epochs itself, so they must be taken in order from `source.first_epoch`."""

    def __init__(self, source: CropBatchSource, device: torch.device, workers: int = 0):
        from nvidia.dali import fn, pipeline_def
        from nvidia.dali.plugin.pytorch import DALIGenericIterator

        super().__init__(source, device, workers)
        on_gpu = device.type == "cuda"
        # Parallel workers only pay off when a batch means disk reads; a RAM gather is faster
        # in-process than the cost of shipping the batch from a worker.
        parallel = workers > 0 and not all(s.split.in_memory for s in source.data.splits)

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
            outputs = fn.external_source(
                source=source,
                num_outputs=4,
                batch=True,
                batch_info=True,
                parallel=parallel,
                layout=["TF", None, None, None],
                **ahead,
            )
            return tuple(o.gpu() for o in outputs) if on_gpu else tuple(outputs)

        self.pipe = pipeline()
        self.pipe.build()
        self.iterator = DALIGenericIterator(
            [self.pipe], ["x", "y", "split", "own"], auto_reset=True
        )
        self.next_epoch = source.first_epoch

    def epoch(self, epoch: int) -> Iterator[Batch]:
        if epoch != self.next_epoch:
            raise ValueError(
                f"DALI runs epochs in order: asked for {epoch}, next is {self.next_epoch}"
            )
        self.next_epoch += 1
        # The source ends the epoch after n_batches; the iterator then resets for the next.
        for out in self.iterator:
            yield out[0]["x"], out[0]["y"], out[0]["split"], out[0]["own"]

    def close(self) -> None:
        # Dropping the pipeline stops its threads and parallel workers.
        self.iterator = self.pipe = None


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
        x, y, s, own = self.source.gather(split[j : j + 1], clip[j : j + 1], start[j : j + 1])
        return x[0], y[0], s[0], own[0]


class TorchLoader(Loader):
    """The plain per-sample DataLoader path, kept as the reference and the fallback."""

    def epoch(self, epoch: int) -> Iterator[Batch]:
        loader = torch.utils.data.DataLoader(
            _RankSamples(self.source, epoch),
            batch_size=self.source.batch_size,
            shuffle=False,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            # Its own generator: iterating must not draw from the global RNG that dropout
            # uses, or the two loaders would train differently on identical batches.
            generator=torch.Generator().manual_seed(self.source.experiment.seed),
        )
        yield from loader


LOADERS = {"dali": DaliLoader, "torch": TorchLoader}


def make_loader(
    kind: str, source: CropBatchSource, device: torch.device, workers: int = 0
) -> Loader:
    return LOADERS[kind](source, device, workers)

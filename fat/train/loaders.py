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

from fat.core.errors import FatError
from fat.runs.settings import ExperimentConfig
from fat.store.crops import gather_crops, prefetch_crops
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
            e.sampler,
        )

    def n_batches(self, epoch: int) -> int:
        return self.plan(epoch).n_batches // self.world

    def samples(self, epoch: int, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(split, clip, start) of this rank's i-th batch of `epoch`."""
        return self.plan(epoch).batch(i * self.world + self.rank)

    def gather(
        self, split: np.ndarray, clip: np.ndarray, start: np.ndarray, prefetch: bool = True
    ) -> tuple[np.ndarray, ...]:
        """(crops, labels, split index, own frames) of these samples (see `Batch`)."""
        splits, crop = self.data.splits, self.experiment.crop_frames
        if (split == split[0]).all():  # one split: its gather is the batch, no copy
            s = splits[int(split[0])]
            x, own = gather_crops(s.split, clip, start, crop, prefetch)
            return x, s.targets_of(clip), split.astype(np.int32), own
        first = splits[0].split
        x = np.empty((len(clip), crop, first.feature_config.n_mels), first.feature_config.dtype)
        y = np.empty((len(clip), len(first.vocabulary)), np.float32)
        own = np.empty(len(clip), np.int32)
        for i in np.unique(split).tolist():
            rows = np.flatnonzero(split == i)
            s = splits[i]
            x[rows], own[rows] = gather_crops(s.split, clip[rows], start[rows], crop, prefetch)
            y[rows] = s.targets_of(clip[rows])
        return x, y, split.astype(np.int32), own

    def batch(self, epoch: int, i: int) -> tuple[np.ndarray, ...]:
        self.read_ahead(epoch, i + 1)
        # Batch i's pages were asked for while batch i - 1 was made (by this process or, with
        # parallel workers, most likely by another); only the first asks for its own.
        return self.gather(*self.samples(epoch, i), prefetch=i == 0)

    def read_ahead(self, epoch: int, i: int) -> None:
        """Request batch i's disk pages now, so they arrive while this batch is used: from a
        cold page cache reads then overlap the step instead of stalling the next batch."""
        if i >= self.n_batches(epoch) or all(s.split.in_memory for s in self.data.splits):
            return
        split, clip, start = self.samples(epoch, i)
        for k in np.unique(split).tolist():
            picked = split == k
            s = self.data.splits[k].split
            prefetch_crops(s, clip[picked], start[picked], self.experiment.crop_frames)

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
        try:
            from nvidia.dali import fn, pipeline_def
            from nvidia.dali.plugin.pytorch import DALIGenericIterator
        except ImportError:
            raise FatError("--loader dali: " + DALI_MISSING.format(why="not installed")) from None

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
        self.on_gpu = on_gpu
        if on_gpu:  # copies into torch's memory, synchronising DALI's stream with torch's
            names = ["x", "y", "split", "own"]
            self.iterator = DALIGenericIterator([self.pipe], names, auto_reset=True)
        self.next_epoch = source.first_epoch
        self._scheduled = False

    def epoch(self, epoch: int) -> Iterator[Batch]:
        if epoch != self.next_epoch:
            raise ValueError(
                f"DALI runs epochs in order: asked for {epoch}, next is {self.next_epoch}"
            )
        self.next_epoch += 1
        # The source ends the epoch after n_batches; the pipeline then resets for the next.
        if self.on_gpu:
            for out in self.iterator:
                yield out[0]["x"], out[0]["y"], out[0]["split"], out[0]["own"]
        else:
            yield from self._shared_batches()

    def _shared_batches(self) -> Iterator[Batch]:
        """On the CPU, the pipeline's own buffers as torch tensors (DLPack, no copy): each is
        used before the next one is asked for, and only then given back to DALI. DALI's
        iterator copies every batch once more, which cost a third of the rate in RAM."""
        pipe = self.pipe
        if not self._scheduled:
            pipe.schedule_run()
            self._scheduled = True
        while True:
            try:
                outputs = pipe.share_outputs()
            except StopIteration:  # the epoch's end: ready the next one
                pipe.reset()
                if pipe.empty():
                    pipe.schedule_run()
                return
            yield tuple(torch.from_dlpack(o.as_tensor()) for o in outputs)
            pipe.release_outputs()
            pipe.schedule_run()

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


class ResidentLoader(Loader):
    """The training splits held in the device's memory (raw, as stored), every crop gathered
    there with the index arithmetic `gather_crops` does on the CPU: a step moves no training
    data between host and device. On a CPU device it is the same gather in torch (the test of
    its crops)."""

    def __init__(self, source: CropBatchSource, device: torch.device, workers: int = 0):
        super().__init__(source, device, workers)
        on_disk = [s.name for s in source.data.splits if not s.split.in_memory]
        if on_disk:
            raise FatError(
                f"device-resident data needs every split in RAM first: {on_disk} are not"
            )
        self.splits = [
            (
                torch.from_numpy(s.split.gather_rows(slice(None))).to(device),
                torch.from_numpy(s.split.offsets).to(device),
                torch.from_numpy(s.split.lengths).to(device),
                torch.from_numpy(s.targets_of(np.arange(len(s.split)))).to(device),
            )
            for s in source.data.splits
        ]
        self.frame = torch.arange(source.experiment.crop_frames, device=device)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        crop = self.source.experiment.crop_frames
        for i in range(self.source.n_batches(epoch)):
            split, clip, start = (
                torch.from_numpy(a).to(self.device) for a in self.source.samples(epoch, i)
            )
            n_mels = self.splits[0][0].shape[1]
            x = torch.empty(
                (len(clip), crop, n_mels), dtype=self.splits[0][0].dtype, device=self.device
            )
            y = torch.empty((len(clip), self.splits[0][3].shape[1]), device=self.device)
            own = torch.empty(len(clip), dtype=torch.int32, device=self.device)
            for k, (frames, offsets, lengths, labels) in enumerate(self.splits):
                rows = (split == k).nonzero().squeeze(1)
                if not len(rows):
                    continue
                c, s = clip[rows], start[rows]
                length = lengths[c]
                at = offsets[c][:, None] + (s[:, None] + self.frame) % length[:, None]
                x[rows] = frames[at]
                y[rows] = labels[c]
                own[rows] = torch.minimum(length - s, torch.tensor(crop, device=self.device)).int()
            yield x, y, split.int(), own

    def close(self) -> None:
        self.splits = []


LOADERS = {"dali": DaliLoader, "torch": TorchLoader, "resident": ResidentLoader}
DALI_MISSING = (
    "nvidia-dali is not usable here ({why}); on Linux `pip install nvidia-dali-cuda130` (DALI "
    "has no macOS or Windows build), or use --loader torch or auto"
)


def dali_unavailable() -> str | None:
    """Why DALI cannot run here (not installed, or the index's 0.0.0 placeholder of other
    platforms, which fails on import), or None when it can."""
    try:
        from nvidia.dali import pipeline_def  # noqa: F401
        from nvidia.dali.plugin.pytorch import DALIGenericIterator  # noqa: F401
    except Exception as e:  # ImportError, or whatever a broken install raises
        return f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else 'no detail'}"
    return None


def choose_loader(name: str) -> tuple[str, str]:
    """The loader `--loader NAME` means here and the line that says which: auto is DALI where
    it imports, else the torch DataLoader (the same crops for the same seed)."""
    if name == "torch":
        return "torch", "input: torch loader"
    why = dali_unavailable()
    if name == "dali" and why:
        raise FatError("--loader dali: " + DALI_MISSING.format(why=why))
    if name == "dali":
        return "dali", "input: dali loader"
    if why:
        return "torch", f"input: torch loader (--loader auto: DALI unavailable, {why})"
    return "dali", "input: dali loader (--loader auto)"


def place_data(name: str, device: torch.device, data: TrainingData) -> torch.device:
    """Where the training splits live (`--data-device`): the training GPU when asked, or for
    auto when every split is in RAM and together they take at most half its free memory;
    else the host."""
    if name == "cpu" or device.type != "cuda":
        if name == "cuda":
            raise FatError("--data-device cuda needs training on a GPU (--device)")
        return torch.device("cpu")
    on_disk = [s.name for s in data.splits if not s.split.in_memory]
    size = sum(s.split.nbytes() for s in data.splits)
    free = torch.cuda.mem_get_info(device)[0]
    if name == "cuda" and (on_disk or size > free):
        why = f"{on_disk} stream from disk" if on_disk else f"{size / 2**30:.1f} GiB > free"
        raise FatError(f"--data-device cuda: the training splits do not fit ({why})")
    return device if not on_disk and size <= free // 2 else torch.device("cpu")


def choose_input(
    loader: str, data_device: str, device: torch.device, data: TrainingData
) -> tuple[str, torch.device, str]:
    """(loader kind, where the splits live, the line that says so) for `--loader` and
    `--data-device`: splits in GPU memory are gathered there; otherwise `choose_loader`."""
    placed = place_data(data_device, device, data)
    if placed.type == "cuda":
        return (
            "resident",
            placed,
            f"input: the splits are in {placed} memory; crops are gathered there",
        )
    kind, line = choose_loader(loader)
    return kind, placed, line


def make_loader(
    kind: str, source: CropBatchSource, device: torch.device, workers: int = 0
) -> Loader:
    return LOADERS[kind](source, device, workers)

"""Featurize one split of an FSDKaggle2019-style directory into a feature store.

Decoding, log-mel and encoding run on `workers` threads (spawned processes past
`THREADS_UP_TO` CPU workers); results come back in CSV order to the one writer, which commits
every few clips. Rerunning after a kill skips committed clips, and
because order is fixed the result equals an uninterrupted run. A bad file never stops the run:
it is skipped with one line (file, reason) in the summary and in an errors CSV by the store.

This module runs the workers and commits what they return; which clips a split has is the
data set adapter's listing (`fat.datasets`), what is reported (summary, progress, errors CSV)
`fat.featurize.report`.
"""

import dataclasses
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fat.core.device import device_name
from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.ids import parse_shard, shard_of
from fat.datasets import ClipEntry, DatasetListing, DatasetOptions, Issue, get_dataset
from fat.featurize.audio import DEFAULT_LIMITS, AudioLimits, load_audio
from fat.featurize.logmel import LogMelExtractor, available_fft_backends
from fat.featurize.report import (
    ClipProgress,
    FeaturizeSummary,
    describe_compute,
    errors_csv_path,
    write_errors,
)
from fat.featurize.settings import FeaturizeOptions
from fat.store import ClipRecord, EncodedClip, FeatureStore, encode_clip, open_store
from fat.store.backends import NewStoreFormatUnknown
from fat.store.remote import check_writable_location

Task = tuple[str, Path, np.ndarray, dict]  # clip id, file, labels, the data set's facts


@dataclass(frozen=True)
class ClipResult:
    """What a worker made of one file: an encoded clip, or the reason it was skipped."""

    clip_id: str
    clip: EncodedClip | None
    error: str | None


# Threads stop scaling past a few workers: the GIL-held part of each clip (file parsing,
# kernel dispatch, the hand-off) serialises them, where processes scale on; on few cores
# threads win, as processes start slowly and pickle their results (BENCHMARKS.md).
THREADS_UP_TO = 4
CLIPS_PER_PROCESS_TASK = 8  # amortises the inter-process round trip


def compute_device(name: str, workers: int) -> str:
    """The device for the log-mel: "cpu" or "cuda:N". "auto" is the GPU when there is one and
    at most `THREADS_UP_TO` workers (where it measured faster), else the CPU, whose worker
    processes scale further than threads around one GPU can."""
    if name == "auto" and workers > THREADS_UP_TO:
        return "cpu"
    return device_name(name)


@dataclass(frozen=True)
class Job:
    """What every worker needs to featurize a clip: picklable, sent to worker processes."""

    cfg: LogMelConfig
    device: str = "cpu"
    limits: AudioLimits = DEFAULT_LIMITS


class ClipFeaturizer:
    """Decode, log-mel and encode one file; one instance per worker thread (the CPU extractor
    keeps work buffers)."""

    def __init__(
        self, cfg: LogMelConfig, device: str = "cpu", limits: AudioLimits = DEFAULT_LIMITS
    ) -> None:
        self.cfg = cfg
        self.limits = limits
        if device == "cpu":
            self.extract = LogMelExtractor(cfg)
        else:
            from fat.featurize.logmel_torch import TorchLogMelExtractor

            self.extract = TorchLogMelExtractor(cfg, device)

    def __call__(
        self, clip_id: str, path: Path, labels: np.ndarray, facts: dict | None = None
    ) -> ClipResult:
        """Any failure on bad data becomes an error string: decoders can raise nearly anything
        on a malformed file, and one file must not stop a run."""
        try:
            audio, info = load_audio(path, self.cfg.sample_rate, self.limits)
            record = ClipRecord(
                clip_id,
                self.extract(audio),
                labels,
                info.sample_rate,
                info.channels,
                info.duration_s,
                facts or {},
            )
            encoded = encode_clip(record, self.cfg.dtype)
            # Any inf or NaN frame makes the per-mel sums non-finite: a 256-value check instead
            # of a pass over every frame (float16 checks are slow in numpy).
            if not np.isfinite(encoded.sums).all():
                return ClipResult(clip_id, None, "non-finite values in the log-mel")
            return ClipResult(clip_id, encoded, None)
        except FatError as e:
            return ClipResult(clip_id, None, str(e).removeprefix(f"{path}: "))
        except Exception as e:  # noqa: BLE001 - see docstring
            return ClipResult(clip_id, None, f"cannot featurize: {type(e).__name__}: {e}")


_featurizer = threading.local()


def _featurize_batch(batch: list[Task], job: Job) -> list[ClipResult]:
    """Run in a worker thread or process: one `ClipFeaturizer` per thread, kept across calls."""
    if getattr(_featurizer, "job", None) != job:
        _featurizer.run = ClipFeaturizer(job.cfg, job.device, job.limits)
        _featurizer.job = job
    return [_featurizer.run(*task) for task in batch]


def _on_processes(device: str, workers: int) -> bool:
    return device == "cpu" and workers > THREADS_UP_TO


def _exit_with_parent(parent: int) -> None:
    """Worker-process start: leave when the parent is gone. A parent killed with SIGKILL
    cannot stop its pool, and the workers would wait on their task queue for ever (each holds
    a write end of it, so it never reads end-of-file)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _process_pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: the parent has threads (zarr's event loop) that fork would copy
    # mid-flight.
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )


def _results(
    tasks: list[Task], job: Job, workers: int, on_submit: Callable[[list[Task]], None]
) -> Iterator[ClipResult]:
    """Featurize `tasks` on `workers` threads, or processes past `THREADS_UP_TO` on the CPU;
    results in task order.

    Threads up to a few workers: decoding (file reads, libsndfile), the FFT (ducc0 or scipy),
    the numba kernels (compiled `nogil`) and the numpy steps all release the GIL, so threads
    scale without process start-up or pickling. A CUDA log-mel always runs on threads around
    one CUDA context (processes with a context each measured slower). At most `ahead`
    clips wait, which bounds memory and lets workers run on while the writer commits.
    `on_submit` hears of every batch before a worker gets it.
    """
    if _on_processes(job.device, workers):
        pool = _process_pool(workers)
        per_task = CLIPS_PER_PROCESS_TASK
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="featurize")
        per_task = 1
    batches = [tasks[i : i + per_task] for i in range(0, len(tasks), per_task)]
    ahead = 64 * workers // per_task

    def submit(batch: list[Task]):
        on_submit(batch)
        return pool.submit(_featurize_batch, batch, job)

    with pool:
        pending = deque(submit(b) for b in batches[:ahead])
        try:
            for batch in batches[ahead:]:
                yield from pending.popleft().result()
                pending.append(submit(batch))
            while pending:
                yield from pending.popleft().result()
        except BrokenProcessPool:
            raise FatError(
                "a featurize worker process died (out of memory, or a crash while decoding); "
                "rerun the same command: the clips it was working on are then tried one at a "
                "time, and a file that kills its worker again is skipped"
            ) from None
        finally:  # the consumer stopped early (an error, Ctrl-C): drop what has not started
            for future in pending:
                future.cancel()


class InFlight:
    """The clips whose featurizing has started and not finished, in a file beside the store.
    A run the system kills (out of memory on one file) leaves it behind; the next run tries
    those clips one at a time first (`_isolated`), so a file that kills its worker is skipped
    with a reason instead of killing every rerun."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None

    def left_by_last_run(self) -> set[str]:
        unfinished: set[str] = set()
        if self.path.exists():
            for line in self.path.read_text(errors="replace").splitlines():
                mark, _, clip_id = line.partition(" ")
                (unfinished.add if mark == "+" else unfinished.discard)(clip_id)
        return unfinished

    def __enter__(self) -> "InFlight":
        self._file = open(self.path, "a", buffering=1)  # each line reaches the OS at once
        return self

    def started(self, batch: list[Task]) -> None:
        self._file.write("".join(f"+ {task[0]}\n" for task in batch))

    def finished(self, clip_id: str) -> None:
        self._file.write(f"- {clip_id}\n")

    def __exit__(self, exc_type, *_) -> None:
        self._file.close()
        if exc_type is None:  # a whole run: nothing is in flight
            self.path.unlink(missing_ok=True)


def _isolated(tasks: list[Task], job: Job, in_flight: InFlight) -> Iterator[ClipResult]:
    """Each task alone in one worker process: a task whose worker dies is skipped with that
    reason, and a fresh worker takes the next."""
    pool = None
    try:
        for task in tasks:
            pool = pool or _process_pool(1)
            in_flight.started([task])
            try:
                yield from pool.submit(_featurize_batch, [task], job).result()
            except BrokenProcessPool:
                pool.shutdown(wait=False)
                pool = None
                yield ClipResult(task[0], None, WORKER_DIED)
    finally:
        if pool is not None:
            pool.shutdown()


WORKER_DIED = (
    "its featurize worker died on it in the last run and again now (killed by the system: "
    "out of memory?)"
)


def featurize_split(
    data_dir: Path,
    split: str,
    store_path: Path,
    config: LogMelConfig | None = None,
    options: FeaturizeOptions | None = None,
    labels_file: Path | None = None,
    dataset: str = "fat2019",
    dataset_options: DatasetOptions | None = None,
) -> FeaturizeSummary:
    """Featurize one split of the data set `dataset` under `data_dir` (`labels_file`: the
    answer key of FSDKaggle2019's test split); returns what happened. See `featurize_listing`."""
    check_writable_location(store_path)
    given = dataset_options or DatasetOptions()
    if labels_file is not None:
        given = dataclasses.replace(given, labels=Path(labels_file))
    listing = get_dataset(dataset).read(Path(data_dir), [split], given)
    return featurize_listing(listing, split, store_path, config, options)


def featurize_listing(
    listing: DatasetListing,
    split: str,
    store_path: Path,
    config: LogMelConfig | None = None,
    options: FeaturizeOptions | None = None,
) -> FeaturizeSummary:
    """Featurize the clips of `split` of a data set's listing into the store; returns what
    happened. Rows the data set's adapter rejected are skipped with their reason (with
    `options.strict`, the first raises). Past `THREADS_UP_TO` workers on the CPU the work is
    done by spawned processes, so a script that calls this needs the usual
    `if __name__ == "__main__":` guard around its own work."""
    check_writable_location(store_path)
    store_path = Path(store_path)
    cfg = config or LogMelConfig()
    opts = options or FeaturizeOptions()
    workers = opts.workers or os.cpu_count() or 1
    device = compute_device(opts.device, workers)
    job = Job(cfg, device, AudioLimits(max_seconds=opts.max_seconds))
    listed = listing.splits[split]
    if opts.strict and listed.issues:
        first = listed.issues[0]
        where = f"{first.file}:{first.line}" if first.line else first.file
        raise FatError(f"{where}: {first.clip_id}: {first.reason}")
    clips, issues = listed.clips, listed.issues
    if opts.shard:
        clips, issues = _shard(clips, issues, *parse_shard(opts.shard))
    summary = FeaturizeSummary(split=split, store=store_path, skipped=list(issues))
    summary.clips_total = len(clips) + len(issues)
    column = {name: k for k, name in enumerate(listing.vocabulary)}
    with _open_for_featurize(store_path, opts.store_format) as store:
        writer = store.writer(
            split,
            cfg,
            listing.vocabulary,
            labelled=listed.labelled,
            overwrite=opts.overwrite,
            compression=opts.compression,
            commit_every=opts.commit_every,
            dataset=listing.dataset,
            single_label=listing.single_label,
            class_ids=listing.class_ids,
        )
        with writer:
            tasks = []
            for clip in clips:
                if clip.clip_id in writer.committed:
                    summary.already_committed += 1
                    continue
                labels = np.zeros(len(listing.vocabulary), np.uint8)
                labels[[column[name] for name in clip.labels]] = 1
                tasks.append((clip.clip_id, clip.path, labels, clip.info))
            progress = ClipProgress(split, len(tasks), show=not opts.quiet)
            workers = min(workers, len(tasks) or 1)
            summary.compute = describe_compute(
                device, available_fft_backends()[0], workers, _on_processes(device, workers)
            )
            in_flight = InFlight(in_flight_path(store_path, split))
            suspects = in_flight.left_by_last_run()
            paths = {clip_id: path for clip_id, path, _, _ in tasks}
            with in_flight:
                for result in _ordered_results(tasks, suspects, job, workers, in_flight):
                    in_flight.finished(result.clip_id)
                    clip = result.clip
                    seconds = clip.record.source_duration_s if clip is not None else 0.0
                    summary.add(result.clip_id, paths[result.clip_id], result.error, seconds)
                    if clip is not None:
                        writer.add(clip)
                    progress.update(summary)
            progress.close()
            if writer.recovery:
                summary.notes.append(f"{split}: {writer.recovery}")
    summary.seconds = time.perf_counter() - summary.started
    summary.errors_csv = write_errors(errors_csv_path(store_path, split), summary.skipped)
    return summary


def _shard(
    clips: list[ClipEntry], issues: list[Issue], index: int, shards: int
) -> tuple[list[ClipEntry], list[Issue]]:
    """The part of a split shard `index` of `shards` owns: its clips, and the rejected rows
    of those clips (rows without a name go to shard 0, so each is reported once)."""
    mine = [c for c in clips if shard_of(c.clip_id, shards) == index]
    rejected = [i for i in issues if (shard_of(i.clip_id, shards) if i.clip_id else 0) == index]
    return mine, rejected


def _open_for_featurize(store_path: Path, store_format: str | None) -> FeatureStore:
    """The store, opened to append; a new one whose name says no format is refused with the
    ways `fat featurize` has of choosing one."""
    try:
        return open_store(store_path, "a", format=store_format)
    except NewStoreFormatUnknown as e:
        raise FatError(f"{e}, or pass --format zarr|hdf5") from None


def _ordered_results(
    tasks: list[Task], suspects: set[str], job: Job, workers: int, in_flight: InFlight
) -> Iterator[ClipResult]:
    """Results in task order: the clips a killed run left in flight are featurized first, one
    at a time (`_isolated`), the rest by the workers, then merged back into order."""
    early = {
        r.clip_id: r for r in _isolated([t for t in tasks if t[0] in suspects], job, in_flight)
    }
    rest = _results([t for t in tasks if t[0] not in early], job, workers, in_flight.started)
    for task in tasks:
        yield early.pop(task[0]) if task[0] in early else next(rest)


def in_flight_path(store_path: Path, split: str) -> Path:
    """Where a running featurize keeps the clips in flight: beside the store."""
    return store_path.with_name(f"{store_path.name}.{split}.inflight")

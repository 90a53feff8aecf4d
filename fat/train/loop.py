"""`train(experiment, options)`: one training run, read top to bottom.

Set-up (processes, data, model, the state to resume), then per epoch `train_one_epoch` and
`end_of_epoch` (validation, SWA, the epoch's record, checkpoints), then a `RunSummary`.
One process, or one rank of `torchrun` on one node or many (DDP: each rank takes every N-th
batch of the shared epoch plan; rank 0 validates and writes). The run directory's files are
`fat.runs.directory`'s.
"""

import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from fat.core.device import torch_device
from fat.core.errors import FatError
from fat.core.evaluation import evaluate_scores
from fat.core.ids import read_clip_list
from fat.core.progress import progress_bar
from fat.core.submission import read_submission, write_submission
from fat.core.wording import plural
from fat.datasets import headline_metric
from fat.models import TaggingModel, TrainingOutputs
from fat.models.input import ModelInput
from fat.models.pretrained import HEADS, front_end_mismatch, load_backbone
from fat.predict.ensemble import Source
from fat.predict.inference import score_clips
from fat.predict.pseudo_labels import teacher_targets
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import (
    build_model,
    load_checkpoint,
    load_trained_model,
    run_identity,
    save_checkpoint,
    saved_experiment,
)
from fat.runs.compose import saved_options
from fat.runs.directory import CHECKPOINTS, LOCK, SNAPSHOT, RunDirectory
from fat.runs.logs import EpochRecord, RunLogs, StepRecord
from fat.runs.settings import ExperimentConfig, RunOptions
from fat.store import Split
from fat.store.remote import ChunkCacheSpec, is_url
from fat.train.augment import MIXER_FUNCTIONS, mask_spans, resized_crop, step_generator
from fat.train.averaging import debiased_ema
from fat.train.compiled import compile_module
from fat.train.crop_teacher import CropTeacher, load_crop_teacher
from fat.train.data import TrainingData, load_training_data, memory_budget
from fat.train.loaders import CropBatchSource, Loader, choose_input, make_loader
from fat.train.losses import lsoft_targets, training_loss
from fat.train.schedule import lr_at
from fat.train.sync_batchnorm import synchronise_batchnorm


@dataclass
class RunSummary:
    out: Path
    epochs_run: int
    best_epoch: int
    best_score: float  # of the validation metric that picks best.pt (`metric`)
    last_lwlrap: float = math.nan
    swa_lwlrap: float | None = None
    ema_lwlrap: float | None = None
    samples_per_s: float = 0.0
    data_wait_frac: float = 0.0
    metric: str = "lwlrap"

    def line(self) -> str:
        if math.isfinite(self.best_score):
            best = f"best val {self.metric} {self.best_score:.4f} at epoch {self.best_epoch}"
        else:  # nothing validated: best.pt follows the latest epoch
            best = "no validation clips (best.pt is the last epoch's)"
        return (
            f"run {self.out}: {plural(self.epochs_run, 'epoch')}, {best}, "
            f"{self.samples_per_s:.0f} samples/s, data wait {self.data_wait_frac:.1%}"
        )


@dataclass(frozen=True)
class Ranks:
    """This process's place under torchrun (rank 0 of 1 without it)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Ranks":
        env = os.environ
        return cls(
            int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))
        )

    @property
    def lead(self) -> bool:
        return self.rank == 0


@dataclass
class Progress:
    """Where a run stands after an epoch: what a checkpoint resumes."""

    epoch: int = 0  # the last finished epoch
    step: int = 0
    best_score: float = -math.inf  # of the validation metric that picks best.pt
    best_epoch: int = 0
    best_loss: float = math.inf  # its validation loss: breaks ties (accuracy saturates)


@dataclass
class TrainingRun:
    """What the epoch steps share: settings, data, model and where results go."""

    experiment: ExperimentConfig
    options: RunOptions
    ranks: Ranks
    device: torch.device
    run: RunDirectory
    data: TrainingData
    model: TaggingModel
    net: torch.nn.Module  # the model's training outputs, wrapped for DDP with several ranks
    optimizer: torch.optim.Optimizer
    swa: torch.optim.swa_utils.AveragedModel | None
    ema: torch.optim.swa_utils.AveragedModel | None
    inputs: ModelInput  # raw crops -> the model's input on the device
    identity: dict
    logs: RunLogs
    source: CropBatchSource
    loader: Loader
    steps_per_epoch: int
    single_label: bool = False  # softmax cross-entropy, one label per clip
    metric: str = "lwlrap"  # the validation metric that picks best.pt
    teacher: CropTeacher | None = None  # --teacher-targets crop: targets for every crop

    @property
    def groups(self) -> list[tuple[str, torch.nn.Module]]:
        return self.model.layer_groups()


@dataclass(frozen=True)
class EpochStats:
    train_loss: float  # mean over the epoch's steps and ranks
    lr: float  # the learning rate of the last step
    samples_per_s: float  # all ranks together
    data_wait_frac: float  # share of the epoch spent waiting for batches
    seconds: float
    grad_norms: dict[str, float]  # mean per layer group over the epoch's steps


def train(
    experiment: ExperimentConfig,
    options: RunOptions,
    resume: bool = False,
    stop_after: int | None = None,
) -> RunSummary:
    """Run `experiment` to its last epoch into `options.out`. `resume` continues from
    checkpoints/last.pt. `stop_after` ends the call after that many epochs, as if killed
    after a checkpoint."""
    if not options.store or not options.out:
        raise FatError("a run needs a store and an output directory (--store, --out)")
    options = saved_options(options)
    ranks = Ranks.from_env()
    device = start_process(options.device, ranks)
    run = RunDirectory(options.out)
    torch.manual_seed(experiment.seed)
    with removed_if_unused(run), ExitStack() as open_parts, peer_failures(ranks, run):
        if ranks.lead:
            open_parts.enter_context(run.lock())  # one trainer per run directory
        if not resume and run.has_checkpoint():
            raise FatError(
                f"{run.path} already holds a run; add --resume to continue it or pick --out"
            )
        tr, progress = set_up(open_parts, experiment, options, ranks, device, run, resume)
        # What a call with nothing left to run returns.
        summary = RunSummary(
            run.path, progress.epoch, progress.best_epoch, progress.best_score, metric=tr.metric
        )
        start = progress.epoch + 1
        for epoch in range(start, experiment.epochs + 1):
            stats, progress.step = train_one_epoch(tr, epoch, progress.step)
            summary = end_of_epoch(tr, epoch, stats, progress)
            if ranks.world > 1:
                dist.barrier()
            if stop_after is not None and epoch - start + 1 >= stop_after:
                break
    return summary


@contextmanager
def removed_if_unused(run: RunDirectory) -> Iterator[None]:
    """A run that fails before it wrote anything leaves no directory behind (only its lock
    would be there), so a mistyped store does not litter a folder that looks like a run."""
    existed = run.path.exists()
    try:
        yield
    except BaseException:
        if not existed and run.path.is_dir() and {p.name for p in run.path.iterdir()} <= {LOCK}:
            shutil.rmtree(run.path, ignore_errors=True)
        raise


def set_up(
    open_parts: ExitStack,
    experiment: ExperimentConfig,
    options: RunOptions,
    ranks: Ranks,
    device: torch.device,
    run: RunDirectory,
    resume: bool,
) -> tuple["TrainingRun", Progress]:
    """The run's parts, in phases: its data, its model and optimizer (restored when resuming),
    its record on disk, then its input pipeline and logs. Parts that hold files or processes
    are closed by `open_parts`."""
    given = GivenTargets.read(experiment, options, run, resume, ranks.lead)
    data, budget_rule = open_data(open_parts, experiment, options, run, resume, given)
    single_label, metric = learning_rule(experiment, data.splits[0].split)
    parts = build_model_parts(experiment, data, ranks, device, resume, single_label)
    progress = Progress()
    if resume:
        progress = restore(run, experiment, parts, device, ranks.world)
    if ranks.lead:
        record_start(run, experiment, options, data, given, resume)
    source = CropBatchSource(data, experiment, progress.epoch + 1, ranks.rank, ranks.world)
    steps_per_epoch = source.n_batches(progress.epoch + 1)
    if steps_per_epoch == 0:
        raise FatError(
            f"{data.n_train} training clips make no full batch of {experiment.batch_size} "
            f"per each of {ranks.world} processes; lower --batch-size or set --steps-per-epoch"
        )
    groups = [name for name, _ in parts.model.layer_groups()]
    logs = open_parts.enter_context(
        RunLogs(run, groups, progress.epoch + 1, progress.step, ranks.lead)
    )
    kind, data_device, input_line = choose_input(options.loader, options.data_device, device, data)
    loader = open_parts.enter_context(make_loader(kind, source, data_device, options.workers))
    if ranks.lead and not options.quiet:
        lines = data_report(data, budget_rule, input_line, source, progress.epoch + 1)
        loss = "softmax cross-entropy" if single_label else "binary cross-entropy"
        lines.append(f"loss: {loss}; best.pt by validation {metric}")
        for line in lines:
            tqdm.write(line, file=sys.stderr)
    first = data.splits[0].split
    teacher = None
    if experiment.teacher and experiment.teacher_targets == "crop":
        with torch.random.fork_rng(devices=[]):  # loading the teacher draws from the seeded RNG
            teacher = load_crop_teacher(
                experiment.teacher,
                first.feature_config,
                first.vocabulary,
                data.normalizer,
                device,
                experiment.teacher_temperature,
                experiment.teacher_weight,
                compiled=options.compile,
            )
    tr = TrainingRun(
        experiment=experiment,
        options=options,
        ranks=ranks,
        device=device,
        run=run,
        data=data,
        model=parts.model,
        net=training_forward(parts.model, ranks, options.compile),
        optimizer=parts.optimizer,
        swa=parts.swa,
        ema=parts.ema,
        inputs=ModelInput(data.normalizer, device, experiment.pad),
        identity=run_identity(
            experiment, first.feature_config, first.vocabulary, data.normalizer, single_label
        ),
        logs=logs,
        source=source,
        loader=loader,
        steps_per_epoch=steps_per_epoch,
        single_label=single_label,
        metric=metric,
        teacher=teacher,
    )
    return tr, progress


def learning_rule(experiment: ExperimentConfig, first: Split) -> tuple[bool, str]:
    """(single_label, metric): whether the run trains a softmax over classes (`--loss`; auto:
    where the data set says each clip has one label), and the validation metric that picks
    best.pt (`--select-by`; auto: the data set's headline)."""
    single_label = experiment.loss == "softmax" or (
        experiment.loss == "auto" and first.single_label
    )
    if single_label and experiment.noisy_loss == "lsoft":
        raise FatError("--noisy-loss lsoft is for multi-label bce, and this run trains a softmax")
    metric = experiment.select_by
    if metric == "auto":
        metric = headline_metric(first.dataset, single_label)
    return single_label, metric


@dataclass(frozen=True)
class GivenTargets:
    """What the run was given about its clips: which noisy clips to train on, and soft
    targets per split to train towards instead of the labels (`--noisy-targets` for the noisy
    split, `--teacher` for every training split); read from the given files, or computed from
    the teacher, at the start, and from the run's own copies when resuming (so a run does not
    depend on where those files or teachers were)."""

    noisy_clips: list[str] | None = None
    soft_targets: dict[str, tuple] = field(default_factory=dict)  # split -> read_submission

    @classmethod
    def read(
        cls,
        experiment: ExperimentConfig,
        options: RunOptions,
        run: RunDirectory,
        resume: bool,
        lead: bool = True,
    ) -> "GivenTargets":
        clips = None
        if experiment.noisy_clips:
            path = run.noisy_clips_file if resume else Path(experiment.noisy_clips)
            clips = read_clip_list(path)
            if not clips:
                raise FatError(
                    f"--noisy-clips {path}: lists no clips, so no noisy clip would train"
                )
        targets = {}
        if experiment.noisy_targets:
            if "noisy" not in experiment.train_splits:
                raise FatError("--noisy-targets: the run does not train on the noisy split")
            targets["noisy"] = read_submission(
                run.noisy_targets_file if resume else Path(experiment.noisy_targets)
            )
        if experiment.teacher and experiment.teacher_targets == "clip":
            targets = _teacher_targets(experiment, options, run, resume, lead)
        return cls(clips, targets)


def _teacher_targets(
    experiment: ExperimentConfig, options: RunOptions, run: RunDirectory, resume: bool, lead: bool
) -> dict[str, tuple]:
    """Per training split, the teacher's targets: computed once (and kept in the run), read
    back from the run when resuming. Each process of a distributed run computes its own
    (the same), so none waits on a file another writes."""
    if resume:
        return {s: read_submission(run.teacher_file(s)) for s in experiment.train_splits}
    sources = [Source.parse(text, "best") for text in experiment.teacher]
    cfg = PredictConfig(device=options.device)
    with torch.random.fork_rng(devices=[]):  # loading the teacher draws from the seeded RNG
        return {
            split: teacher_targets(
                sources,
                split,
                options.store,
                temperature=experiment.teacher_temperature,
                blend=1 - experiment.teacher_weight,
                cfg=cfg,
                progress=lead and not options.quiet,
            )
            for split in experiment.train_splits
        }


def open_data(
    open_parts: ExitStack,
    experiment: ExperimentConfig,
    options: RunOptions,
    run: RunDirectory,
    resume: bool,
    given: GivenTargets,
) -> tuple[TrainingData, str]:
    """The training splits with their hold-out (a resumed run's own), in RAM or on disk
    within the memory budget; and the budget's rule, for the run's first lines."""
    budget, budget_rule = memory_budget(options.memory_budget_gb, options.workers)
    cache = None
    if is_url(options.store) and options.chunk_cache_gb > 0:
        cache = ChunkCacheSpec(str(run.chunk_cache), int(options.chunk_cache_gb * 2**30))
    data = open_parts.enter_context(
        load_training_data(
            options.store,
            experiment.train_splits,
            experiment.val_fraction,
            experiment.seed,
            budget,
            given.noisy_clips,
            saved=run.saved_inputs().get("splits") if resume else None,
            saved_normalizer=run.saved_normalizer() if resume else None,
            folds=experiment.folds,
            fold=experiment.fold,
            soft_targets=given.soft_targets,
            chunk_cache=cache,
            val_split=experiment.val_split,
            folds_from=experiment.folds_from,
        )
    )
    if experiment.batch_size > data.n_train and not experiment.split_weights:
        raise FatError(
            f"--batch-size {experiment.batch_size} is larger than the {data.n_train} training "
            "clips: a batch would hold some clips twice; lower --batch-size"
        )
    return data, budget_rule


@dataclass
class ModelParts:
    """The network on its device, its optimizer, and the weight averages the run keeps."""

    model: TaggingModel
    optimizer: torch.optim.Optimizer
    swa: torch.optim.swa_utils.AveragedModel | None
    ema: torch.optim.swa_utils.AveragedModel | None

    def averages(self) -> dict[str, torch.optim.swa_utils.AveragedModel | None]:
        """By the key each is saved under in last.pt."""
        return {"swa_model": self.swa, "ema_model": self.ema}


def build_model_parts(
    experiment: ExperimentConfig,
    data: TrainingData,
    ranks: Ranks,
    device: torch.device,
    resume: bool,
    single_label: bool = False,
) -> ModelParts:
    """The run's network (initialised from --init or --pretrained on a new run), optimizer
    and SWA/EMA averages."""
    first = data.splits[0].split
    n_mels, n_classes = first.feature_config.n_mels, len(first.vocabulary)
    model = build_model(experiment, n_mels, n_classes, single_label).to(device)
    if experiment.init and not resume:
        initialise_from(model, experiment, first.vocabulary)
    if experiment.freeze_backbone_epochs and not experiment.pretrained:
        # Checked here, not in the settings: a fine-tuning recipe names it, the user the file.
        raise FatError(
            "--freeze-backbone-epochs fine-tunes a pretrained backbone: give --pretrained FILE "
            "(a PANNs checkpoint; docs/pretrained.md)"
        )
    if experiment.freeze_backbone_epochs and ranks.world > 1:
        raise FatError("--freeze-backbone-epochs is not supported under torchrun (DDP) yet")
    if experiment.pretrained and not resume:
        load_pretrained(model, experiment, first.feature_config, ranks)
    if experiment.sync_batchnorm and ranks.world > 1:
        model = synchronise_batchnorm(model, device)
    opt_cls = torch.optim.AdamW if experiment.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=experiment.lr, weight_decay=experiment.weight_decay)
    swa = torch.optim.swa_utils.AveragedModel(model) if experiment.swa_start else None
    ema = None
    if experiment.ema:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=debiased_ema(experiment.ema), use_buffers=True
        )
    return ModelParts(model, optimizer, swa, ema)


def record_start(
    run: RunDirectory,
    experiment: ExperimentConfig,
    options: RunOptions,
    data: TrainingData,
    given: GivenTargets,
    resume: bool,
) -> None:
    """The run's settings and inputs on disk (again on every resume: options may have
    changed), copies of the given noisy-clip files, and a note of classes it cannot learn."""
    first = data.splits[0].split
    run.write_settings(experiment.to_dict(), options.to_dict())
    run.write_inputs(
        first.feature_config, first.vocabulary, data.normalizer, data.assignments(), options.store
    )
    if resume:
        return
    absent = data.absent_classes()
    if absent:
        shown = ", ".join(absent[:5]) + (", ..." if len(absent) > 5 else "")
        tqdm.write(
            f"note: {len(absent)} of {len(first.vocabulary)} classes have no training clip "
            f"({shown}); the model can only learn them as absent",
            file=sys.stderr,
        )
    if given.noisy_clips is not None:
        run.save_noisy_clips(given.noisy_clips, experiment.noisy_clips)
    if experiment.noisy_targets:
        write_submission(run.noisy_targets_file, *given.soft_targets["noisy"])
    if experiment.teacher and experiment.teacher_targets == "clip":
        for split, targets in given.soft_targets.items():
            write_submission(run.teacher_file(split), *targets)


class TrainingForward(torch.nn.Module):
    """The model with `forward_train` as its forward, so DDP sees every head's output."""

    def __init__(self, model: TaggingModel):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> TrainingOutputs:
        return self.model.forward_train(x)


def training_forward(model: TaggingModel, ranks: Ranks, compiled: bool = False) -> torch.nn.Module:
    """The model's training outputs as one module: wrapped for DDP with several ranks, and
    compiled with `compiled` (the model itself stays as it is, for checkpoints and validation)."""
    net = TrainingForward(model)
    net = torch.nn.parallel.DistributedDataParallel(net) if ranks.world > 1 else net
    return compile_module(net, next(model.parameters()).device) if compiled else net


@contextmanager
def peer_failures(ranks: Ranks, run: RunDirectory) -> Iterator[None]:
    """Under DDP, a collective that fails (another rank died: gloo and NCCL raise a
    RuntimeError) or torchrun's SIGTERM (it stops every rank when one fails) ends this rank
    with one line instead of a traceback or a hang."""
    if ranks.world == 1:
        yield
        return

    def stopped_by_torchrun(signum, frame):
        raise FatError(
            f"rank {ranks.rank} stopped by torchrun (another rank of this run failed: see its "
            f"log); checkpoints in {run.path / CHECKPOINTS} are intact; resume with --resume"
        )

    previous = signal.signal(signal.SIGTERM, stopped_by_torchrun)
    try:
        yield
    except RuntimeError as e:
        reason = " ".join(str(e).split())[:160]
        raise FatError(
            f"rank {ranks.rank} stopped: a collective with the other ranks failed ({reason}); "
            f"another rank probably died (see its log); checkpoints in {run.path / CHECKPOINTS} "
            "are intact; resume with --resume"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def data_report(
    data: TrainingData,
    budget_rule: str,
    input_line: str,
    source: CropBatchSource,
    epoch: int,
    probe_batches: int = 8,
) -> list[str]:
    """The run's first lines: where each split is, the RAM budget and its rule, the input
    path (`input_line`), and for splits read from disk the rate their first batches came at."""
    where = ", ".join(f"{s.name} {s.split.nbytes() / 2**30:.2f} GiB {s.where}" for s in data.splits)
    lines = [f"data: {where}; RAM budget {budget_rule}", input_line]
    if any(not s.split.in_memory for s in data.splits):
        n = min(probe_batches, source.n_batches(epoch))
        start = time.perf_counter()
        for i in range(n):
            source.batch(epoch, i)
        rate = n * source.batch_size / max(time.perf_counter() - start, 1e-9)
        lines.append(f"input: disk-backed batches came at {rate:,.0f} crops/s (first {n})")
    return lines


def start_process(device_name: str, ranks: Ranks) -> torch.device:
    """This process's device, and the DDP process group when there are several ranks."""
    device = torch_device(device_name, ranks.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and every un-placed CUDA call use this rank's GPU
    if ranks.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def load_pretrained(model: TaggingModel, experiment: ExperimentConfig, features, ranks) -> None:
    """`--pretrained FILE`: the backbone from a PANNs-layout checkpoint; a warning with the
    reason when the store's features are not those the checkpoint's network learned from."""
    if not hasattr(model, "classifier"):
        raise FatError(f"--pretrained needs an arch with a clip classifier, not {experiment.arch}")
    mismatch = front_end_mismatch(experiment.pretrained, features)
    if mismatch and ranks.lead:
        tqdm.write(
            f"warning: --pretrained {experiment.pretrained} learned from PANNs' log-mel (32 kHz, "
            f"n_fft 1024, hop 320, 64 mels, 50-14000 Hz); this store differs ({mismatch}), so "
            "its filters see other inputs than they were trained on (featurize with "
            "--preset panns for theirs)",
            file=sys.stderr,
        )
    load_backbone(model, experiment.pretrained)


def freeze_backbone(model: TaggingModel, frozen: bool) -> None:
    """Hold every weight but the classifiers' still (`--freeze-backbone-epochs`); batch-norm
    statistics still follow the new data."""
    heads = {id(p) for name, p in model.named_parameters() if name.startswith(HEADS)}
    heads |= {id(p) for p in model.classifier.parameters()}
    for p in model.parameters():
        p.requires_grad_(not frozen or id(p) in heads)


def initialise_from(model: TaggingModel, experiment: ExperimentConfig, vocabulary) -> None:
    """`--init RUN`: start from that run's best weights (same arch and vocabulary)."""
    init = load_trained_model(experiment.init, "best")
    if init.vocabulary != vocabulary or init.experiment.arch != experiment.arch:
        raise FatError(f"--init {experiment.init}: its arch or vocabulary differs from this run")
    try:  # a noisy-clip head may be new here or left behind: it starts fresh
        missing, unexpected = model.load_state_dict(init.model.state_dict(), strict=False)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1].strip()
        raise FatError(f"--init {experiment.init}: its weights do not fit ({first})") from None
    misfits = [k for k in missing + unexpected if not k.startswith("noisy_classifier.")]
    if misfits:
        raise FatError(f"--init {experiment.init}: weights missing or extra: {misfits[:4]}")


def restore(
    run: RunDirectory,
    experiment: ExperimentConfig,
    parts: ModelParts,
    device: torch.device,
    world: int = 1,
) -> Progress:
    """Model, optimizer, SWA and EMA averages and random state exactly as last.pt left them;
    refused under another number of processes than the run trained with."""
    state = load_checkpoint(run.checkpoint("last"))
    saved_experiment(state, run.checkpoint("last")).check_resumable_as(experiment)
    trained_as = int(state.get("world_size", 1))
    if trained_as != world:
        raise FatError(
            f"--resume: {run.path} trained as {trained_as} process(es) and this is {world} "
            f"(WORLD_SIZE): each optimizer step took a global batch of {trained_as} x "
            f"{experiment.batch_size} clips; resume with {trained_as} (torchrun --nnodes x "
            "--nproc-per-node), or start a new run"
        )
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    for key, average in parts.averages().items():
        if average is not None and state.get(key) is not None:
            average.load_state_dict(state[key])
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)  # dropout draws on the GPU
    return Progress(
        int(state["epoch"]),
        int(state["step"]),
        float(state.get("best_score", state.get("best_lwlrap"))),  # older runs: lwlrap
        int(state["best_epoch"]),
        float(state.get("best_loss", math.inf)),
    )


def train_one_epoch(tr: TrainingRun, epoch: int, step: int) -> tuple[EpochStats, int]:
    """One pass over the epoch's batches; returns its statistics and the step after it."""
    e, device, model = tr.experiment, tr.device, tr.model
    model.train()
    if e.freeze_backbone_epochs:
        freeze_backbone(model, frozen=epoch <= e.freeze_backbone_epochs)
    t0, wait, seen = time.perf_counter(), 0.0, 0
    loss_sum = torch.zeros((), device=device)
    log_loss, log_n = torch.zeros((), device=device), 0
    grad_sum = {name: torch.zeros((), device=device) for name, _ in tr.groups}
    noisy_index = tr.data.names.index("noisy") if "noisy" in tr.data.names else -1
    bar = progress_bar(
        total=tr.steps_per_epoch,
        desc=f"epoch {epoch}/{e.epochs}",
        show=not tr.options.quiet and tr.ranks.lead,
        leave=False,
    )
    lr = e.lr
    t_wait = time.perf_counter()
    for i, (crops, y, split_ids, own) in enumerate(tr.loader.epoch(epoch)):
        wait += time.perf_counter() - t_wait
        lr = lr_at(e, step, tr.steps_per_epoch)
        for g in tr.optimizer.param_groups:
            g["lr"] = lr
        x = tr.inputs(crops, own)  # normalised, padded, (B, mels, T) on the device
        y = y.to(device, non_blocking=True).float()
        noisy = (split_ids.to(device) == noisy_index).float()
        gen = step_generator(e.seed, epoch, i, tr.ranks.rank)
        x = resized_crop(x, e.crop_scale, gen)
        x = mask_spans(x, 2, e.time_masks, e.time_mask_frames, gen)
        x = mask_spans(x, 1, e.freq_masks, e.freq_mask_bins, gen)
        if e.mixup > 0:
            x, y, partner, lam = MIXER_FUNCTIONS[e.mixer](x, y, e.mixup, gen)
            noisy = lam * noisy + (1 - lam) * noisy[partner]
        if tr.teacher is not None:  # the teacher's answer to exactly this (mixed) input
            y = tr.teacher.targets(x, y)
        # bf16 autocast on CUDA only: a CPU without native bf16 runs it far slower.
        with torch.autocast("cuda", torch.bfloat16, enabled=device.type == "cuda"):
            out = tr.net(x)
        logits = out.logits.float()
        target = lsoft_targets(y, logits, noisy, e.lsoft_beta) if e.noisy_loss == "lsoft" else y
        loss = training_loss(out, target, noisy, model.aux_weights, tr.single_label)
        tr.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norms = group_grad_norms(tr.groups, device)
        if e.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), e.grad_clip)
        tr.optimizer.step()
        if tr.ema is not None:
            tr.ema.update_parameters(model)
        step += 1
        seen += x.shape[0]
        loss_sum += loss.detach()
        log_loss += loss.detach()
        log_n += 1
        for name, value in norms.items():
            grad_sum[name] += value.detach()  # stays on the device: no sync per step
        if step % tr.options.log_every == 0 or i == tr.steps_per_epoch - 1:
            mean_loss = log_loss.item() / log_n
            if not math.isfinite(mean_loss):
                raise stopped(
                    f"loss became {mean_loss} at epoch {epoch}, step {step}", epoch, tr.run
                )
            fraction = round(epoch - 1 + (i + 1) / tr.steps_per_epoch, 4)
            norms_now = {k: float(v) for k, v in norms.items()}
            tr.logs.write_step(StepRecord(step, fraction, lr, mean_loss, norms_now))
            log_loss.zero_()
            log_n = 0
            bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
        bar.update()
        t_wait = time.perf_counter()
    bar.close()
    seconds = time.perf_counter() - t0
    # Summed over ranks: loss, samples seen, seconds waited for data.
    totals = torch.stack(
        [loss_sum / tr.steps_per_epoch, loss_sum.new_tensor(seen), loss_sum.new_tensor(wait)]
    )
    if tr.ranks.world > 1:
        dist.all_reduce(totals)
    world = tr.ranks.world
    stats = EpochStats(
        train_loss=float(totals[0]) / world,
        lr=lr,
        samples_per_s=float(totals[1]) / seconds,
        data_wait_frac=float(totals[2]) / world / seconds,
        seconds=seconds,
        grad_norms={k: float(v) / tr.steps_per_epoch for k, v in grad_sum.items()},
    )
    return stats, step


def end_of_epoch(tr: TrainingRun, epoch: int, stats: EpochStats, progress: Progress) -> RunSummary:
    """Rank 0 validates the model (and the SWA average), writes the epoch's record and keeps
    the checkpoints; a model broken this epoch stops every rank before it can become best.pt."""
    validation, failure = None, None
    vocabulary = tr.data.splits[0].split.vocabulary
    if tr.ranks.lead:
        scores = validation_scores(tr.model, tr.data, tr.experiment.crop_frames, tr.device)
        failure = broken_model(tr.model, scores, epoch, tr.run)
        if failure is None and scores:
            validation = evaluate_scores(scores, vocabulary, tr.single_label)
    if tr.ranks.world > 1:
        shared = [failure]
        dist.broadcast_object_list(shared, src=0)
        failure = shared[0]
    if failure:
        raise FatError(failure)
    progress.epoch = epoch
    if not tr.ranks.lead:
        return RunSummary(tr.run.path, epoch, best_epoch=0, best_score=math.nan, metric=tr.metric)

    swa_lwlrap = ema_lwlrap = None
    if tr.swa is not None and epoch >= tr.experiment.swa_start:
        tr.swa.update_parameters(tr.model)
        update_swa_batchnorm(tr.swa, tr.source, tr.inputs, epoch)
        swa_lwlrap = averaged_lwlrap(tr, tr.swa.module)
    if tr.ema is not None:  # its batch-norm statistics are averaged with the weights
        ema_lwlrap = averaged_lwlrap(tr, tr.ema.module)
    val = validation.lwlrap if validation else math.nan
    parts = validation.subsets if validation else {}
    record = EpochRecord(
        epoch=epoch,
        step=progress.step,
        lr=stats.lr,
        train_loss=stats.train_loss,
        val_loss=validation.loss if validation else math.nan,
        val_lwlrap=val,
        val_lwlrap_curated=parts["curated"].overall if "curated" in parts else "",
        val_lwlrap_noisy=parts["noisy"].overall if "noisy" in parts else "",
        val_map=validation.metrics["map"] if validation else math.nan,
        val_accuracy=validation.metrics["accuracy"] if validation else math.nan,
        swa_val_lwlrap="" if swa_lwlrap is None else swa_lwlrap,
        ema_val_lwlrap="" if ema_lwlrap is None else ema_lwlrap,
        samples_per_s=stats.samples_per_s,
        data_wait_frac=stats.data_wait_frac,
        epoch_seconds=stats.seconds,
        grad_norms=stats.grad_norms,
    )
    tr.logs.write_epoch(record, validation)
    # Without a validation set (NaN) the best model is simply the latest one.
    score = validation.metric(tr.metric) if validation else math.nan
    loss = validation.loss if validation else math.nan
    tie = score == progress.best_score and loss < progress.best_loss
    if math.isnan(score) or score > progress.best_score or tie:
        progress.best_score = progress.best_score if math.isnan(score) else score
        progress.best_loss = loss
        progress.best_epoch = epoch
    averaged = {"swa": swa_lwlrap, "ema": ema_lwlrap}
    save_checkpoints(tr, epoch, progress, val, averaged, best=progress.best_epoch == epoch)
    if not tr.options.quiet:
        tqdm.write(
            f"epoch {epoch}/{tr.experiment.epochs}: train loss {stats.train_loss:.4f}, "
            f"val loss {record.val_loss:.4f}, val lwlrap {val:.4f}"
            + (f", val {tr.metric} {score:.4f}" if tr.metric != "lwlrap" else "")
            + (f", swa {swa_lwlrap:.4f}" if swa_lwlrap is not None else "")
            + (f", ema {ema_lwlrap:.4f}" if ema_lwlrap is not None else "")
            + f", {stats.samples_per_s:.0f} samples/s, data wait {stats.data_wait_frac:.1%}"
        )
    return RunSummary(
        tr.run.path,
        epoch,
        progress.best_epoch,
        progress.best_score,
        last_lwlrap=val,
        swa_lwlrap=swa_lwlrap,
        ema_lwlrap=ema_lwlrap,
        samples_per_s=stats.samples_per_s,
        data_wait_frac=stats.data_wait_frac,
        metric=tr.metric,
    )


def save_checkpoints(
    tr: TrainingRun,
    epoch: int,
    progress: Progress,
    val: float,
    averaged: dict[str, float | None],
    best: bool,
) -> None:
    """best.pt when this epoch is the best, snapshot-<epoch>.pt at the end of each cosine
    restart cycle, swa.pt and ema.pt when those averages were validated (`averaged`: their
    lwlrap, None when not), then last.pt."""
    base = {**tr.identity, "epoch": epoch, "step": progress.step}
    if best:
        save_checkpoint(
            tr.run.checkpoint("best"), {**base, "model": tr.model.state_dict(), "val_lwlrap": val}
        )
    e = tr.experiment
    if e.schedule == "cosine-restarts" and epoch % int(e.cycle_epochs) == 0:  # a cycle's end
        snapshot = {**base, "model": tr.model.state_dict(), "val_lwlrap": val}
        save_checkpoint(tr.run.checkpoint(f"{SNAPSHOT}{epoch}"), snapshot)
    for kind, average in (("swa", tr.swa), ("ema", tr.ema)):
        if averaged.get(kind) is not None:
            state = {**base, "model": average.module.state_dict(), "val_lwlrap": averaged[kind]}
            save_checkpoint(tr.run.checkpoint(kind), state)
    # last.pt goes last: once it names this epoch, every file above is complete.
    cuda = tr.device.type == "cuda"
    save_checkpoint(
        tr.run.checkpoint("last"),
        {
            **base,
            "model": tr.model.state_dict(),
            "optimizer": tr.optimizer.state_dict(),
            "swa_model": tr.swa.state_dict() if tr.swa is not None else None,
            "ema_model": tr.ema.state_dict() if tr.ema is not None else None,
            "torch_rng": torch.get_rng_state(),
            "world_size": tr.ranks.world,  # the global batch and epoch plan depend on it
            "cuda_rng": torch.cuda.get_rng_state(tr.device) if cuda else None,
            "best_score": progress.best_score,
            "best_epoch": progress.best_epoch,
            "best_loss": progress.best_loss,
            "val_lwlrap": val,
        },
    )


def averaged_lwlrap(tr: TrainingRun, model: torch.nn.Module) -> float:
    """Validation lwlrap of an averaged model (SWA, EMA); NaN when its scores are not finite."""
    scores = validation_scores(model, tr.data, tr.experiment.crop_frames, tr.device)
    finite = scores and all(np.isfinite(s).all() for _, s in scores.values())
    vocabulary = tr.data.splits[0].split.vocabulary
    return evaluate_scores(scores, vocabulary).lwlrap if finite else math.nan


def validation_scores(
    model: torch.nn.Module, data: TrainingData, crop_frames: int, device: torch.device
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(truth, scores) of each split's held-out clips, scored on whole clips like `fat predict`."""
    parts = {}
    inputs = ModelInput(data.normalizer, device, "wrap")
    for s in data.splits:
        if len(s.val):
            scores = score_clips(model, s.split, s.val, crop_frames, inputs)
            parts[s.name] = (s.split.labels[s.val].astype(np.float64), scores)
    return parts


def broken_model(
    model: torch.nn.Module,
    scores: dict[str, tuple[np.ndarray, np.ndarray]],
    epoch: int,
    run: RunDirectory,
) -> str | None:
    """Why the model after `epoch` must not be validated or saved, or None. The training loss
    is checked before each step, so the last step of an epoch can still leave weights that
    overflow or are NaN: caught here, before they could become best.pt."""
    finite_weights = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    finite_scores = all(np.isfinite(s).all() for _, s in scores.values())
    if finite_weights and finite_scores:
        return None
    what = "weights" if not finite_weights else "validation scores"
    return str(stopped(f"the model's {what} became non-finite in epoch {epoch}", epoch, run))


def stopped(what: str, epoch: int, run: RunDirectory) -> FatError:
    return FatError(
        f"{what}; stopped. Checkpoints up to epoch {epoch - 1} in {run.path / CHECKPOINTS} "
        "are intact; try a lower --lr or --grad-clip"
    )


def group_grad_norms(
    groups: list[tuple[str, torch.nn.Module]], device: torch.device
) -> dict[str, torch.Tensor]:
    """L2 norm of the gradient of each layer group (0 for groups without gradients yet)."""
    norms = {}
    for name, module in groups:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        norms[name] = (
            torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            if grads
            else torch.zeros((), device=device)
        )
    return norms


@torch.no_grad()
def update_swa_batchnorm(
    swa_model: torch.optim.swa_utils.AveragedModel,
    source: CropBatchSource,
    inputs: ModelInput,
    epoch: int,
    max_batches: int = 100,
) -> None:
    """Recompute BatchNorm statistics for the averaged weights from training crops."""
    n = min(source.n_batches(epoch), max_batches)
    batches = (source.batch(epoch, i) for i in range(n))
    torch.optim.swa_utils.update_bn(
        (inputs(crops, own) for crops, _, _, own in batches), swa_model, inputs.device
    )

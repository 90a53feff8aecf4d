"""The settings of a training run, in two records saved in its config.json:

- `ExperimentConfig`: what the model learns. It is the run's identity: a resumed run must
  continue the same experiment (only fields marked resumable may change).
- `RunOptions`: where and how it runs (paths, device, loader, workers, memory, logging). They
  may change freely, so a run and its store can be moved and resumed.
"""

from dataclasses import dataclass, fields
from typing import Any

from fat.core.device import DEVICE_HELP, check_device_name
from fat.core.errors import FatError
from fat.core.settings import MAX_WORKERS, MAX_WORKERS_HELP, Range, Settings, setting

SCHEDULES = ("constant", "cyclic", "onecycle", "cosine", "cosine-restarts")
MIXERS = ("mixup", "concat", "specmix")  # each a function in train/augment.py's MIXER_FUNCTIONS
# Headings of `fat train --help`, in the order it lists them.
DATA = "What to train on"
MODEL = "Model"
OPTIMISATION = "Optimisation"
AUGMENTATION = "Augmentation"
NOISY_LABELS = "Noisy labels"
DISTILLATION = "Distillation"
RUN_AND_MACHINE = "Run and machine"
SECTIONS = (DATA, MODEL, OPTIMISATION, AUGMENTATION, NOISY_LABELS, DISTILLATION, RUN_AND_MACHINE)
LOSSES = ("auto", "bce", "softmax")
SELECT_BY = ("auto", "lwlrap", "map", "micro_ap", "auc", "d_prime", "accuracy")  # core.metrics
# Crops an epoch may plan: its plan keeps 24 bytes a crop (two epochs cached), so 10**7 is
# ~0.5 GB, five passes over AudioSet's 2M clips.
MAX_EPOCH_CROPS = 10**7
# Frames of one batch (batch_size x crop_frames): 4 GiB of float16 crops at 128 mels, 16 times
# the largest batches trained on (1024 crops of 1000 frames).
MAX_BATCH_FRAMES = 2**24
# Every number among model_kwargs: they count channels, units, blocks or kernel taps, or are
# dropouts and loss weights; 4096 is 8 times the widest default (512 channels).
MODEL_SETTING_RANGE = Range(0, 4096)


@dataclass(frozen=True)
class ExperimentConfig(Settings):
    """What a run learns. Defaults are the `default` recipe (fat/recipes/default.toml): a
    one-cycle LR to 1e-3, mixup 0.4 and SpecAugment masks for 30 epochs of batch 32, which
    trains well in the epochs it is given (docs/recipes.md). The FAT2019 baseline the report
    started from (10 epochs, constant lr 3e-4, no augmentation) is `--recipe baseline-2019`."""

    KIND = "train config"

    arch: str = setting(
        "cnn", "Model from the registry (`fat train --list-models`).", section=MODEL
    )
    model_kwargs: dict[str, Any] = setting(
        {},
        "A model setting KEY=VALUE, VALUE as JSON where it parses (repeatable); "
        "`fat train --list-models` shows each model's settings.",
        flag="--model-arg",
        section=MODEL,
    )
    # 4: a CNN14 of 1.3 B parameters (they grow with its square), past any published tagger.
    width: float = setting(
        1.0, "Channel multiplier of the model.", above=0.0, high=4.0, section=MODEL
    )
    train_splits: tuple[str, ...] = setting(
        ("curated",),
        "Store splits to train on, comma-separated, by the data set's own names (curated,noisy; "
        "train; ...). A split named noisy gets the noisy-label options.",
        section=DATA,
    )
    val_fraction: float = setting(
        0.2,
        "Share of each training split held out for validation (stratified by class).",
        low=0.0,
        below=1.0,
        section=DATA,
    )
    val_split: str = setting(
        "",
        "A store split that validates instead of a held-out share of the training splits "
        "(FSD50K's val); the training splits then train whole.",
        section=DATA,
    )
    epochs: int = setting(
        30,
        "Epochs to train; may grow when resuming.",
        low=1,
        high=100_000,
        resumable=True,
        section=OPTIMISATION,
    )
    batch_size: int = setting(
        32,
        "Crops per optimizer step (per process under DDP).",
        low=1,
        high=65536,
        section=OPTIMISATION,
        short="-b",
    )
    crop_frames: int = setting(
        128,
        "Frames per training crop (~1 s at the default hop).",
        low=8,  # the networks' pooling needs a few frames
        high=100_000,  # 13 minutes at the default hop
        section=DATA,
    )
    pad: str = setting(
        "wrap",
        "How a clip shorter than the crop is filled: repeated (wrap), or zeros after "
        "normalisation, i.e. each band's mean level (zeros).",
        choices=("wrap", "zeros"),
        section=DATA,
    )
    optimizer: str = setting("adam", "Optimizer.", choices=("adam", "adamw"), section=OPTIMISATION)
    # Any finite float32: a huge rate is a mistake training reports (the loss diverges), not
    # one that can take the machine down.
    lr: float = setting(1e-3, "Peak learning rate.", above=0.0, high=3e38, section=OPTIMISATION)
    lr_min: float = setting(
        1e-5,
        "Low end of the cyclic, cosine and onecycle schedules.",
        low=0.0,
        high=3e38,
        section=OPTIMISATION,
    )
    cycle_epochs: float = setting(
        4.0,
        "Cyclic and cosine-restarts schedules: epochs per cycle (whole epochs for restarts).",
        above=0.0,
        high=100_000.0,
        section=OPTIMISATION,
    )
    weight_decay: float = setting(0.0, "Weight decay.", low=0.0, high=10.0, section=OPTIMISATION)
    schedule: str = setting(
        "onecycle", "Learning-rate schedule.", choices=SCHEDULES, section=OPTIMISATION
    )
    mixup: float = setting(
        0.4,
        "Pairs of crops mixed, lam ~ Beta(alpha, alpha) with this alpha; 0 turns it off.",
        low=0.0,
        high=100.0,  # lam is ~0.5 long before this
        section=AUGMENTATION,
    )
    crop_scale: float = setting(
        1.0,
        "Random resized crops: each crop zoomed to a random window of at least this share of "
        "its frames and of its mels, stretched back; 1 = off.",
        above=0.0,
        high=1.0,
        section=AUGMENTATION,
    )
    mixer: str = setting(
        "mixup",
        "How pairs mix: mixup (blend inputs and targets), concat (one crop's first half then "
        "the other's second half, joined by a sigmoid ramp, targets the union; --mixup only "
        "switches it on), specmix (a band of frames and a band of mels of the other pasted "
        "in, targets by area).",
        choices=MIXERS,
        section=AUGMENTATION,
    )
    time_masks: int = setting(
        2, "SpecAugment: time masks per crop.", low=0, high=64, section=AUGMENTATION
    )
    time_mask_frames: int = setting(
        16,
        "SpecAugment: widest time mask, in frames.",
        low=0,
        high=10_000,  # wider than any crop trained on masks all of it
        section=AUGMENTATION,
    )
    freq_masks: int = setting(
        2, "SpecAugment: mel-band masks per crop.", low=0, high=64, section=AUGMENTATION
    )
    freq_mask_bins: int = setting(
        8,
        "SpecAugment: widest mel mask, in bands.",
        low=0,
        high=1024,  # the most mel bands a store has
        section=AUGMENTATION,
    )
    swa_start: int = setting(
        0,
        "Epoch (1-based) from which SWA averages weights; 0 = off.",
        low=0,
        high=100_000,
        section=OPTIMISATION,
    )
    swa_lr: float = setting(
        0.0,
        "Constant learning rate during SWA; 0 keeps the schedule's.",
        low=0.0,
        high=3e38,
        section=OPTIMISATION,
    )
    ema: float = setting(
        0.0,
        "Exponential moving average of the weights (and batch-norm statistics), updated every "
        "step with this decay, e.g. 0.999, debiased (the first weights do not linger); "
        "validated each epoch and saved as checkpoints/ema.pt like SWA; 0 = off.",
        low=0.0,
        below=1.0,
        section=OPTIMISATION,
    )
    loss: str = setting(
        "auto",
        "Training loss: bce (one sigmoid per class, multi-label), softmax (cross-entropy over "
        "classes, one label per clip), or auto: softmax where the data set says every clip has "
        "one label (ESC-50, a folder per class), else bce. Softmax models predict a softmax.",
        choices=LOSSES,
        section=OPTIMISATION,
    )
    select_by: str = setting(
        "auto",
        "Validation metric that picks best.pt: lwlrap, map, micro_ap, auc, d_prime, accuracy, "
        "or auto: the data set's headline (lwlrap for FSDKaggle2019, map for FSD50K and "
        "AudioSet, accuracy for single-label sets).",
        choices=SELECT_BY,
        section=OPTIMISATION,
    )
    grad_clip: float = setting(
        0.0,
        "Largest total gradient norm; 0 = no clipping.",
        low=0.0,
        high=1e6,  # past any norm a training survives: only kept finite
        section=OPTIMISATION,
    )
    sync_batchnorm: bool = setting(
        False,
        "Under torchrun: batch-norm statistics over every rank's samples, so N processes of "
        "--batch-size B train as one of N x B would (one all-reduce per batch-norm layer and "
        "step); off: each rank's own, as plain DDP.",
        section=RUN_AND_MACHINE,
    )
    seed: int = setting(
        0,
        "Seed of the hold-out, the crops, the model and augmentation.",
        low=0,
        high=2**32 - 1,  # what numpy's and torch's seeds take
        section=OPTIMISATION,
    )
    steps_per_epoch: int = setting(
        0,
        "Optimizer steps per epoch; 0 = one pass over the clips.",
        low=0,
        high=10**7,
        section=OPTIMISATION,
    )
    split_weights: dict[str, float] = setting(
        {},
        "Share of each split in a batch, e.g. curated=0.6,noisy=0.4 (default: by size).",
        low=0.0,
        high=1e6,  # only their ratios matter: the bound keeps them finite
        section=NOISY_LABELS,
    )
    sampler: str = setting(
        "shuffle",
        "Which clips an epoch draws: shuffle (each clip once, or by --split-weights), balanced "
        "(with replacement, weighted so that every class is drawn about equally often).",
        choices=("shuffle", "balanced"),
        section=DATA,
    )
    noisy_loss: str = setting(
        "bce",
        "Loss on noisy clips: bce, or lsoft (soft bootstrapping).",
        choices=("bce", "lsoft"),
        section=NOISY_LABELS,
    )
    noisy_head: bool = setting(
        False,
        "A second classifier for noisy clips: their loss goes through it, curated clips' "
        "through the main one, so label noise stays out of the classifier that predicts.",
        section=NOISY_LABELS,
    )
    lsoft_beta: float = setting(
        0.7,
        "Lsoft: weight of the given label against the model's.",
        low=0.0,
        high=1.0,
        section=NOISY_LABELS,
    )
    noisy_clips: str = setting(
        "",
        "File of noisy clip ids to train on (from `fat select-noisy`); copied into the run.",
        section=NOISY_LABELS,
    )
    noisy_targets: str = setting(
        "",
        "Submission-format CSV of soft targets for the noisy clips (`fat pseudo-label`), "
        "trained on instead of their labels; copied into the run.",
        section=NOISY_LABELS,
    )
    teacher: tuple[str, ...] = setting(
        (),
        "Runs, cross-validation directories or RUN:KIND checkpoints, comma-separated, whose "
        "predictions (their mean) every training clip learns instead of, or beside, its labels "
        "(distillation); see --teacher-targets for when they are computed.",
        section=DISTILLATION,
    )
    teacher_temperature: float = setting(
        1.0,
        "The teacher's logits divided by this before they become targets: above 1 softer, "
        "below 1 sharper.",
        above=0.0,
        high=100.0,
        section=DISTILLATION,
    )
    teacher_weight: float = setting(
        1.0,
        "Share of the teacher's prediction in each clip's target; the rest is its labels.",
        low=0.0,
        high=1.0,
        section=DISTILLATION,
    )
    teacher_targets: str = setting(
        "clip",
        "What the teacher predicts: each clip whole, once before training (kept in the run), or "
        "each crop the student trains on, after its augmentation and mixing (the teacher runs "
        "beside the student at every step, and must be there when the run resumes).",
        choices=("clip", "crop"),
        section=DISTILLATION,
    )
    init: str = setting("", "Run directory whose best weights initialise the model.", section=MODEL)
    pretrained: str = setting(
        "",
        'A PANNs-layout checkpoint ({"model": state_dict}, as the official .pth files) whose '
        "backbone initialises a cnn14, cnn10 or cnn6; its AudioSet head is replaced by one "
        "for the store's vocabulary and its waveform front end ignored.",
        section=MODEL,
    )
    freeze_backbone_epochs: int = setting(
        0,
        "With --pretrained: the first epochs train only the classifier head.",
        low=0,
        high=100_000,
        section=MODEL,
    )
    folds_from: str = setting(
        "stratified",
        "Where cross-validation folds come from: stratified (cut by iterative stratification "
        "into --folds), or dataset (the folds the data set ships, e.g. ESC-50's 5; "
        "`fat cv --folds dataset`).",
        choices=("stratified", "dataset"),
        section=DATA,
    )
    folds: int = setting(
        0,
        "Cross-validation: the first training split cut into this many stratified folds, "
        "the others train whole (`fat cv` sets it); 0 = a val_fraction hold-out.",
        low=0,
        high=1000,  # leave-one-out on a 1000-clip set at most: each fold is a run
        section=DATA,
    )
    fold: int = setting(
        0, "With folds: which fold (0-based) validates.", low=0, high=999, section=DATA
    )

    def problems(self) -> list[str]:
        problems = batch_problems(self.batch_size, self.crop_frames, self.steps_per_epoch)
        if not self.train_splits or len(set(self.train_splits)) < len(self.train_splits):
            problems.append(f"train_splits must name distinct splits, got {self.train_splits}")
        if self.val_split in self.train_splits:
            problems.append(f"val_split {self.val_split!r} is also a training split")
        if self.val_split and self.folds:
            problems.append("give --val-split or folds, not both: each picks what validates")
        if self.loss == "softmax" and self.noisy_loss == "lsoft":
            problems.append("--noisy-loss lsoft is for multi-label bce; use --loss bce")
        if self.folds == 1 or not self.fold < max(self.folds, 1):
            problems.append(
                f"need folds 0 or >= 2 and 0 <= fold < folds, got {self.folds}/{self.fold}"
            )
        restarts = self.schedule == "cosine-restarts"
        if restarts and (self.cycle_epochs < 1 or self.cycle_epochs != int(self.cycle_epochs)):
            problems.append(f"cosine-restarts needs whole cycle_epochs >= 1: {self.cycle_epochs}")
        if self.swa_start > self.epochs:
            problems.append(f"swa_start must be in 0..epochs, got {self.swa_start}")
        if self.pretrained and self.init:
            problems.append("--pretrained and --init both initialise the model: give one")
        from fat.models import unknown_settings  # lazy: torch only once a run is configured

        reason = unknown_settings(self.arch, self.model_kwargs)
        if reason:
            problems.append(reason)
        problems += model_setting_problems(self.model_kwargs)
        if self.teacher_targets == "crop" and not self.teacher:
            problems.append("--teacher-targets crop needs --teacher")
        if self.teacher and self.noisy_targets:
            problems.append("--teacher and --noisy-targets both replace targets: give one")
        if self.noisy_head and "noisy" not in self.train_splits:
            problems.append("noisy_head needs the noisy split in train_splits")
        unknown = set(self.split_weights) - set(self.train_splits)
        if unknown:
            problems.append(f"split_weights must name train splits: {self.split_weights}")
        return problems

    def check_resumable_as(self, changed: "ExperimentConfig", what: str = "--resume") -> None:
        """FatError unless a run of these settings may continue as `changed` (only resumable
        settings differ): the one rule for `--resume` and for a cross-validation run again."""
        mine, theirs = self.to_dict(), changed.to_dict()
        refused = [
            f.name
            for f in fields(self)
            if mine[f.name] != theirs[f.name] and not f.metadata.get("resumable")
        ]
        if refused:
            verb = "differs" if len(refused) == 1 else "differ"
            raise FatError(
                f"{what}: {', '.join(refused)} {verb} from the saved run "
                f"(a continued run may change only {', '.join(resumable_settings())})"
            )


def batch_problems(
    batch_size: int, crop_frames: int, steps: int, steps_name: str = "steps_per_epoch"
) -> list[str]:
    """What is wrong with a batch's size and an epoch's (`steps` batches, a setting named
    `steps_name`): each setting within its range may still multiply past what memory holds."""
    problems = []
    if batch_size * crop_frames > MAX_BATCH_FRAMES:
        problems.append(
            f"batch_size x crop_frames must be at most {MAX_BATCH_FRAMES} frames, got "
            f"{batch_size} x {crop_frames}"
        )
    if steps * batch_size > MAX_EPOCH_CROPS:
        problems.append(
            f"{steps_name} x batch_size must be at most {MAX_EPOCH_CROPS} crops, got "
            f"{steps} x {batch_size}"
        )
    return problems


def model_setting_problems(model_kwargs: dict[str, Any]) -> list[str]:
    """Numbers among a model's free-form settings outside `MODEL_SETTING_RANGE`, by name
    (the network's size is bounded by width and these)."""
    problems = []
    for key, value in model_kwargs.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, int | float) and not isinstance(item, bool):
                reason = MODEL_SETTING_RANGE.refusal(f"model_kwargs {key}", item)
                if reason:
                    problems.append(reason)
    return problems


def resumable_settings() -> list[str]:
    """Experiment settings a resumed run may change."""
    return [f.name for f in fields(ExperimentConfig) if f.metadata.get("resumable")]


@dataclass(frozen=True)
class RunOptions(Settings):
    """Where and how a run runs; not part of what it learns."""

    KIND = "run options"

    store: str = setting("", "Feature store to train from.", section=DATA)
    out: str = setting(
        "",
        "Run directory (created; holds config, logs and checkpoints).",
        section=RUN_AND_MACHINE,
        short="-o",
    )
    name: str = setting(
        "", "Name shown in reports (default: the run directory's name).", section=RUN_AND_MACHINE
    )
    loader: str = setting(
        "auto",
        "Input pipeline: dali, the plain torch DataLoader (same crops for the same seed), or "
        "auto: DALI where it imports, else torch.",
        choices=("auto", "dali", "torch"),
        section=RUN_AND_MACHINE,
    )
    workers: int = setting(
        0,
        f"Loader worker processes (DALI parallel source / DataLoader workers). {MAX_WORKERS_HELP}",
        low=0,
        high=MAX_WORKERS,
        section=RUN_AND_MACHINE,
        short="-j",
    )
    memory_budget_gb: float | None = setting(
        None,
        "RAM for training splits: they go into RAM smallest first while they fit, the rest "
        "stream from disk.",
        low=0.0,
        high=1e6,  # a petabyte: past any machine's RAM, and finite, so its bytes are a number
        derived="available RAM minus 2 GiB, 1 GiB per loader worker and 10% (the model, "
        "workers and the system)",
        section=RUN_AND_MACHINE,
    )
    chunk_cache_gb: float = setting(
        20.0,
        "Disk for a local cache of the frame chunks streamed from a store on object storage "
        "(the run directory's chunk-cache/), so later epochs do not fetch them again; 0: none.",
        low=0.0,
        high=1e6,
        section=RUN_AND_MACHINE,
    )
    device: str = setting("auto", f"Training device: {DEVICE_HELP}", section=RUN_AND_MACHINE)
    data_device: str = setting(
        "auto",
        "Where the training splits live: cpu (RAM, or streamed from disk), cuda (GPU memory: "
        "crops gathered there, no data crosses PCIe), or auto: the GPU when training runs on "
        "one, every split is in RAM and together they fit in half its free memory.",
        choices=("auto", "cpu", "cuda"),
        section=RUN_AND_MACHINE,
    )
    compile: bool = setting(
        False,
        "Compile the training step (and a crop teacher's models) with torch.compile: faster "
        "steps after a one-off compile "
        "(needs a C++ compiler on a CPU); results agree with an uncompiled run to rounding, "
        "not bit for bit.",
        section=RUN_AND_MACHINE,
    )
    log_every: int = setting(
        10,
        "Optimizer steps between rows of steps.csv.",
        low=1,
        high=10**7,  # the most steps an epoch may have
        section=RUN_AND_MACHINE,
    )
    quiet: bool = setting(
        False, "No progress bars or per-epoch lines.", section=RUN_AND_MACHINE, short="-q"
    )

    def problems(self) -> list[str]:
        problems = []
        reason = check_device_name(self.device)
        if reason:
            problems.append(reason)
        return problems


def run_settings(values: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(experiment, options) of a settings mapping {"experiment": {...}, "options": {...}}:
    what --print-config writes, --config reads and every run's config.json holds."""
    unknown = sorted(set(values) - {"experiment", "options"})
    if unknown:
        raise FatError(
            f"{where}: unknown key(s) {', '.join(unknown)}; expected "
            '{"experiment": {...}, "options": {...}}'
        )
    parts = values.get("experiment", {}), values.get("options", {})
    for key, part in zip(("experiment", "options"), parts, strict=True):
        if not isinstance(part, dict):
            raise FatError(f"{where}: '{key}' must be an object of settings")
    return parts

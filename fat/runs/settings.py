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
from fat.core.settings import Settings, setting

SCHEDULES = ("constant", "cyclic", "onecycle", "cosine", "cosine-restarts")
MIXERS = ("mixup", "concat", "specmix")  # each a function in train/augment.py's MIXER_FUNCTIONS
# Headings of `fat train --help`, in the order it lists them.
DATA = "What to train on"
MODEL = "Model"
OPTIMISATION = "Optimisation"
AUGMENTATION = "Augmentation"
NOISY_LABELS = "Noisy labels"
RUN_AND_MACHINE = "Run and machine"
SECTIONS = (DATA, MODEL, OPTIMISATION, AUGMENTATION, NOISY_LABELS, RUN_AND_MACHINE)
LOSSES = ("auto", "bce", "softmax")
SELECT_BY = ("auto", "lwlrap", "map", "micro_ap", "auc", "d_prime", "accuracy")  # core.metrics


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
    width: float = setting(1.0, "Channel multiplier of the model.", section=MODEL)
    train_splits: tuple[str, ...] = setting(
        ("curated",),
        "Store splits to train on, comma-separated, by the data set's own names (curated,noisy; "
        "train; ...). A split named noisy gets the noisy-label options.",
        section=DATA,
    )
    val_fraction: float = setting(
        0.2,
        "Share of each training split held out for validation (stratified by class).",
        section=DATA,
    )
    val_split: str = setting(
        "",
        "A store split that validates instead of a held-out share of the training splits "
        "(FSD50K's val); the training splits then train whole.",
        section=DATA,
    )
    epochs: int = setting(
        30, "Epochs to train; may grow when resuming.", resumable=True, section=OPTIMISATION
    )
    batch_size: int = setting(
        32, "Crops per optimizer step (per process under DDP).", section=OPTIMISATION, short="-b"
    )
    crop_frames: int = setting(
        128, "Frames per training crop (~1 s at the default hop).", section=DATA
    )
    pad: str = setting(
        "wrap",
        "How a clip shorter than the crop is filled: repeated (wrap), or zeros after "
        "normalisation, i.e. each band's mean level (zeros).",
        choices=("wrap", "zeros"),
        section=DATA,
    )
    optimizer: str = setting("adam", "Optimizer.", choices=("adam", "adamw"), section=OPTIMISATION)
    lr: float = setting(1e-3, "Peak learning rate.", section=OPTIMISATION)
    lr_min: float = setting(
        1e-5, "Low end of the cyclic, cosine and onecycle schedules.", section=OPTIMISATION
    )
    cycle_epochs: float = setting(
        4.0,
        "Cyclic and cosine-restarts schedules: epochs per cycle (whole epochs for restarts).",
        section=OPTIMISATION,
    )
    weight_decay: float = setting(0.0, "Weight decay.", section=OPTIMISATION)
    schedule: str = setting(
        "onecycle", "Learning-rate schedule.", choices=SCHEDULES, section=OPTIMISATION
    )
    mixup: float = setting(
        0.4,
        "Pairs of crops mixed, lam ~ Beta(alpha, alpha) with this alpha; 0 turns it off.",
        section=AUGMENTATION,
    )
    crop_scale: float = setting(
        1.0,
        "Random resized crops: each crop zoomed to a random window of at least this share of "
        "its frames and of its mels, stretched back; 1 = off.",
        section=AUGMENTATION,
    )
    mixer: str = setting(
        "mixup",
        "How pairs mix: mixup (blend inputs and targets), concat (the first lam of one crop's "
        "frames then the rest of the other's, targets the union), specmix (a band of frames "
        "and a band of mels of the other pasted in, targets by area).",
        choices=MIXERS,
        section=AUGMENTATION,
    )
    time_masks: int = setting(2, "SpecAugment: time masks per crop.", section=AUGMENTATION)
    time_mask_frames: int = setting(
        16, "SpecAugment: widest time mask, in frames.", section=AUGMENTATION
    )
    freq_masks: int = setting(2, "SpecAugment: mel-band masks per crop.", section=AUGMENTATION)
    freq_mask_bins: int = setting(
        8, "SpecAugment: widest mel mask, in bands.", section=AUGMENTATION
    )
    swa_start: int = setting(
        0, "Epoch (1-based) from which SWA averages weights; 0 = off.", section=OPTIMISATION
    )
    swa_lr: float = setting(
        0.0, "Constant learning rate during SWA; 0 keeps the schedule's.", section=OPTIMISATION
    )
    ema: float = setting(
        0.0,
        "Exponential moving average of the weights (and batch-norm statistics), updated every "
        "step with this decay, e.g. 0.999; validated each epoch and saved as checkpoints/ema.pt "
        "like SWA; 0 = off.",
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
        0.0, "Largest total gradient norm; 0 = no clipping.", section=OPTIMISATION
    )
    sync_batchnorm: bool = setting(
        False,
        "Under torchrun: batch-norm statistics over every rank's samples, so N processes of "
        "--batch-size B train as one of N x B would (one all-reduce per batch-norm layer and "
        "step); off: each rank's own, as plain DDP.",
        section=RUN_AND_MACHINE,
    )
    seed: int = setting(
        0, "Seed of the hold-out, the crops, the model and augmentation.", section=OPTIMISATION
    )
    steps_per_epoch: int = setting(
        0, "Optimizer steps per epoch; 0 = one pass over the clips.", section=OPTIMISATION
    )
    split_weights: dict[str, float] = setting(
        {},
        "Share of each split in a batch, e.g. curated=0.6,noisy=0.4 (default: by size).",
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
        0.7, "Lsoft: weight of the given label against the model's.", section=NOISY_LABELS
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
        section=DATA,
    )
    fold: int = setting(0, "With folds: which fold (0-based) validates.", section=DATA)

    def problems(self) -> list[str]:
        problems = []
        if self.epochs < 1 or self.batch_size < 1 or self.crop_frames < 8:
            problems.append("need epochs >= 1, batch_size >= 1, crop_frames >= 8")
        if not 0 <= self.val_fraction < 1:
            problems.append(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.lr <= 0 or self.mixup < 0 or self.width <= 0:
            problems.append("need lr > 0, mixup >= 0, width > 0")
        if self.seed < 0 or self.steps_per_epoch < 0:
            problems.append("need seed >= 0 and steps_per_epoch >= 0")
        if not self.train_splits or len(set(self.train_splits)) < len(self.train_splits):
            problems.append(f"train_splits must name distinct splits, got {self.train_splits}")
        if self.val_split in self.train_splits:
            problems.append(f"val_split {self.val_split!r} is also a training split")
        if self.val_split and self.folds:
            problems.append("give --val-split or folds, not both: each picks what validates")
        if self.loss == "softmax" and self.noisy_loss == "lsoft":
            problems.append("--noisy-loss lsoft is for multi-label bce; use --loss bce")
        if self.folds == 1 or self.folds < 0 or not 0 <= self.fold < max(self.folds, 1):
            problems.append(
                f"need folds 0 or >= 2 and 0 <= fold < folds, got {self.folds}/{self.fold}"
            )
        restarts = self.schedule == "cosine-restarts"
        if restarts and (self.cycle_epochs < 1 or self.cycle_epochs != int(self.cycle_epochs)):
            problems.append(f"cosine-restarts needs whole cycle_epochs >= 1: {self.cycle_epochs}")
        if not 0 < self.crop_scale <= 1:
            problems.append(f"crop_scale must be in (0, 1], got {self.crop_scale}")
        if not 0 <= self.ema < 1:
            problems.append(f"ema must be in [0, 1), got {self.ema}")
        if self.swa_start < 0 or self.swa_start > self.epochs:
            problems.append(f"swa_start must be in 0..epochs, got {self.swa_start}")
        if self.freeze_backbone_epochs < 0:
            problems.append("freeze_backbone_epochs must be >= 0")
        if self.pretrained and self.init:
            problems.append("--pretrained and --init both initialise the model: give one")
        from fat.models import unknown_settings  # lazy: torch only once a run is configured

        reason = unknown_settings(self.arch, self.model_kwargs)
        if reason:
            problems.append(reason)
        if self.noisy_head and "noisy" not in self.train_splits:
            problems.append("noisy_head needs the noisy split in train_splits")
        unknown = set(self.split_weights) - set(self.train_splits)
        if unknown or any(w < 0 for w in self.split_weights.values()):
            problems.append(
                f"split_weights must be >= 0 and name train splits: {self.split_weights}"
            )
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
        "Loader worker processes (DALI parallel source / DataLoader workers).",
        section=RUN_AND_MACHINE,
        short="-j",
    )
    memory_budget_gb: float | None = setting(
        None,
        "RAM for training splits: they go into RAM smallest first while they fit, the rest "
        "stream from disk.",
        derived="available RAM minus 2 GiB, 1 GiB per loader worker and 10% (the model, "
        "workers and the system)",
        section=RUN_AND_MACHINE,
    )
    chunk_cache_gb: float = setting(
        20.0,
        "Disk for a local cache of the frame chunks streamed from a store on object storage "
        "(the run directory's chunk-cache/), so later epochs do not fetch them again; 0: none.",
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
    log_every: int = setting(
        10, "Optimizer steps between rows of steps.csv.", section=RUN_AND_MACHINE
    )
    quiet: bool = setting(
        False, "No progress bars or per-epoch lines.", section=RUN_AND_MACHINE, short="-q"
    )

    def problems(self) -> list[str]:
        problems = []
        reason = check_device_name(self.device)
        if reason:
            problems.append(reason)
        budget = self.memory_budget_gb
        if self.log_every < 1 or self.workers < 0 or (budget is not None and budget < 0):
            problems.append("need log_every >= 1, workers >= 0, memory_budget_gb >= 0")
        if self.chunk_cache_gb < 0:
            problems.append("need chunk_cache_gb >= 0")
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

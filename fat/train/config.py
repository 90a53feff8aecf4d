"""Training settings: one typed record, saved with every run so a result traces to its settings."""

from dataclasses import asdict, dataclass, field
from typing import Any

from fat.config import known_fields
from fat.errors import FatError

SCHEDULES = ("constant", "cyclic", "onecycle", "cosine")
LOADERS = ("dali", "torch")
NOISY_LOSSES = ("bce", "lsoft")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run learns. Defaults follow the seed's baseline."""

    store: str
    out: str
    name: str = ""
    arch: str = "cnn"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    width: float = 1.0
    train_splits: tuple[str, ...] = ("curated",)
    val_fraction: float = 0.2
    epochs: int = 10
    batch_size: int = 32
    crop_frames: int = 128
    # How a clip shorter than the crop is filled: "wrap" repeats it, "zeros" pads with 0 after
    # normalisation, i.e. each band's mean level (not silence, which is far below the mean).
    pad: str = "wrap"
    optimizer: str = "adam"
    lr: float = 3e-4
    lr_min: float = 1e-5  # lower bound of cyclic/cosine/onecycle schedules
    cycle_epochs: float = 4.0  # cyclic: one period of the triangle, in epochs
    weight_decay: float = 0.0
    schedule: str = "constant"
    mixup: float = 0.0  # Beta(alpha, alpha); 0 turns it off
    time_masks: int = 0  # SpecAugment: number of time masks per crop
    time_mask_frames: int = 16
    freq_masks: int = 0
    freq_mask_bins: int = 8
    swa_start: int = 0  # epoch (1-based) from which SWA averages weights; 0 turns it off
    swa_lr: float = 0.0  # 0 keeps the schedule's LR during SWA
    grad_clip: float = 0.0  # max total grad norm; 0 turns clipping off
    seed: int = 0
    loader: str = "dali"
    workers: int = 0  # torch loader workers / DALI parallel source workers for on-disk stores
    memory_budget_gb: float = 8.0  # splits up to this size are loaded into RAM (the fast path)
    device: str = "auto"
    log_every: int = 10  # steps between rows of steps.csv
    steps_per_epoch: int = 0  # 0: one pass over the training clips
    # Noisy-label strategies (apply when "noisy" is a train split).
    split_weights: dict[str, float] = field(default_factory=dict)
    noisy_loss: str = "bce"
    lsoft_beta: float = 0.7
    noisy_clips: str = ""  # file with noisy clip ids to train on (from `fat select-noisy`)
    init: str = ""  # run directory whose best weights initialise the model

    def __post_init__(self) -> None:
        problems = []
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.loader not in LOADERS:
            problems.append(f"loader must be one of {LOADERS}, got {self.loader!r}")
        if self.noisy_loss not in NOISY_LOSSES:
            problems.append(f"noisy_loss must be one of {NOISY_LOSSES}, got {self.noisy_loss!r}")
        if self.pad not in ("wrap", "zeros"):
            problems.append(f"pad must be wrap or zeros, got {self.pad!r}")
        if self.optimizer not in ("adam", "adamw"):
            problems.append(f"optimizer must be adam or adamw, got {self.optimizer!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.crop_frames < 8:
            problems.append("need epochs >= 1, batch_size >= 1, crop_frames >= 8")
        if not 0 <= self.val_fraction < 1:
            problems.append(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.lr <= 0 or self.mixup < 0 or self.width <= 0:
            problems.append("need lr > 0, mixup >= 0, width > 0")
        if not self.train_splits or any(s not in ("curated", "noisy") for s in self.train_splits):
            problems.append(f"train_splits must be curated and/or noisy, got {self.train_splits}")
        if self.swa_start < 0 or self.swa_start > self.epochs:
            problems.append(f"swa_start must be in 0..epochs, got {self.swa_start}")
        unknown = set(self.split_weights) - set(self.train_splits)
        if unknown or any(w < 0 for w in self.split_weights.values()):
            problems.append(
                f"split_weights must be >= 0 and name train splits: {self.split_weights}"
            )
        if problems:
            raise FatError("invalid train config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["train_splits"] = list(self.train_splits)
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        values = known_fields(cls, values, "train config")
        if "train_splits" in values:
            values["train_splits"] = tuple(values["train_splits"])
        return cls(**values)

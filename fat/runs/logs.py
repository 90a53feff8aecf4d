"""A run's logs while it trains: metrics.csv (one row per epoch), steps.csv (every
`log_every` steps), val_per_class.csv and TensorBoard events; each row durable once written.

CSV logs survive a resume: rows written after the checkpoint a run resumes from are dropped
when the logs are opened, so none appears twice.
"""

import csv
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fat.core.evaluation import Evaluation
from fat.core.files import append_durably, atomic_write
from fat.runs.directory import METRICS, STEPS, TENSORBOARD, VAL_PER_CLASS, RunDirectory, csv_text

GRAD_NORM_PREFIX = "grad_norm:"
VAL_PER_CLASS_COLUMNS = ["epoch", "subset", "class", "lwlrap", "weight"]


def grad_norm_column(group: str) -> str:
    return GRAD_NORM_PREFIX + group


@dataclass(frozen=True)
class EpochRecord:
    """One row of metrics.csv. Empty cells ("") where a value does not apply (no SWA yet, no
    noisy validation clips)."""

    epoch: int
    step: int
    lr: float
    train_loss: float
    val_loss: float
    val_lwlrap: float
    val_lwlrap_curated: float | str
    val_lwlrap_noisy: float | str
    val_map: float  # macro mean average precision
    val_accuracy: float  # top-1
    swa_val_lwlrap: float | str
    ema_val_lwlrap: float | str
    samples_per_s: float
    data_wait_frac: float
    epoch_seconds: float
    grad_norms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    """One row of steps.csv: the mean loss since the previous row."""

    step: int
    epoch: float  # fractional: epoch - 1 + (steps done in it) / steps per epoch
    lr: float
    train_loss: float
    grad_norms: dict[str, float] = field(default_factory=dict)


def _columns(record_type: type, groups: Sequence[str]) -> list[str]:
    own = [f.name for f in fields(record_type) if f.name != "grad_norms"]
    return own + [grad_norm_column(g) for g in groups]


def _row(record: EpochRecord | StepRecord) -> dict[str, Any]:
    row = asdict(record)
    norms = row.pop("grad_norms")
    return {**row, **{grad_norm_column(k): v for k, v in norms.items()}}


METRIC_COLUMNS = _columns(EpochRecord, ())
STEP_COLUMNS = _columns(StepRecord, ())


class CsvLog:
    """An append-only CSV, each row durable once written. On open, existing rows for which
    `keep` is false are dropped (they were written after the checkpoint the run resumes from),
    and so is a row a kill cut short; the rewrite replaces the file whole (`atomic_write`), so
    a kill during it leaves the history as it was."""

    def __init__(self, path: Path, columns: list[str], keep: Callable[[dict], bool], enabled: bool):
        self.path, self.columns, self.enabled = path, columns, enabled
        if not enabled:
            return
        kept = []
        if path.exists():
            with open(path, newline="") as f:
                kept = [row for row in csv.DictReader(f) if _whole(row) and _kept(keep, row)]
        with atomic_write(path, newline="") as f:
            f.write(csv_text(columns, kept, header=True))

    def write(self, rows: list[dict]) -> None:
        if self.enabled:
            append_durably(self.path, csv_text(self.columns, rows, header=False))


def _whole(row: dict) -> bool:
    return None not in row.values() and None not in row  # a cut-short line lacks fields


def _kept(keep: Callable[[dict], bool], row: dict) -> bool:
    try:
        return keep(row)
    except (TypeError, ValueError):  # a damaged line: not history worth keeping
        return False


class RunLogs:
    """The logs of one training process: metrics.csv, steps.csv, val_per_class.csv and
    TensorBoard events. Disabled (writes nothing) on DDP ranks other than 0."""

    def __init__(
        self, run: "RunDirectory", groups: Sequence[str], start_epoch: int, step: int, enabled: bool
    ):
        def kept_epochs(row: dict) -> bool:
            return int(row["epoch"]) < start_epoch

        metric_columns = _columns(EpochRecord, groups)
        self.metrics = CsvLog(run.path / METRICS, metric_columns, kept_epochs, enabled)
        self.steps = CsvLog(
            run.path / STEPS,
            _columns(StepRecord, groups),
            lambda row: int(row["step"]) <= step,
            enabled,
        )
        self.per_class = CsvLog(
            run.path / VAL_PER_CLASS, VAL_PER_CLASS_COLUMNS, kept_epochs, enabled
        )
        self.board = _tensorboard_writer(run.path / TENSORBOARD) if enabled else None

    def write_step(self, record: StepRecord) -> None:
        self.steps.write([_row(record)])

    def write_epoch(self, record: EpochRecord, validation: Evaluation | None) -> None:
        row = _row(record)
        self.metrics.write([row])
        if validation is not None:
            self.per_class.write(
                [
                    {
                        "epoch": record.epoch,
                        "subset": subset,
                        "class": name,
                        "lwlrap": result.per_class[c],
                        "weight": result.weights[c],
                    }
                    for subset, result in validation.subsets.items()
                    for c, name in enumerate(validation.vocabulary)
                ]
            )
        if self.board is not None:
            for key, value in row.items():
                if isinstance(value, float) and key != "epoch":
                    self.board.add_scalar(key.replace(":", "/"), value, record.epoch)
            self.board.flush()

    def close(self) -> None:
        if self.board is not None:
            self.board.close()

    def __enter__(self) -> "RunLogs":
        return self

    def __exit__(self, *_) -> None:
        self.close()


def _tensorboard_writer(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional: metrics.csv holds the same numbers
        return None
    return SummaryWriter(str(path))

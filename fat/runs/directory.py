"""The run directory: every file a training run holds, by name and column, with its writers
(used by the trainer and `fat evaluate`) and its readers (used by prediction and reports).

    config.json          {"experiment": {...}, "options": {...}}: the run's settings, in the
                         form `fat train --config` reads
    inputs.json          what the model reads: feature config, vocabulary, normaliser
    metrics.csv          one row per epoch: EpochRecord's fields, then grad_norm:<group>
    steps.csv            every `log_every` steps: StepRecord's fields, then grad_norm:<group>
    val_per_class.csv    per epoch, subset and class: validation lwlrap and class weight
    noisy_clips.txt      the noisy clip ids the run trains on, when it was given a list
    checkpoints/         best.pt, last.pt, swa.pt, ema.pt (format: fat.runs.checkpoint)
    eval/<split>/        from `fat evaluate`: summary.json, per_class.csv (one row per class)
    tensorboard/         the metrics as TensorBoard events, when tensorboard is installed

CSV logs survive a resume: rows written after the checkpoint a run resumes from are dropped
when the logs are opened, so none appears twice.
"""

import csv
import io
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fat.core.errors import FatError, one_line
from fat.core.evaluation import ALL, Evaluation
from fat.core.features import LogMelConfig
from fat.core.files import append_durably, atomic_write
from fat.core.ids import write_clip_list
from fat.core.lock import ExclusiveLock
from fat.runs.settings import run_settings

CONFIG = "config.json"
INPUTS = "inputs.json"
METRICS = "metrics.csv"
STEPS = "steps.csv"
VAL_PER_CLASS = "val_per_class.csv"
NOISY_CLIPS = "noisy_clips.txt"
NOISY_TARGETS = "noisy_targets.csv"
CHECKPOINTS = "checkpoints"
EVAL = "eval"
EVAL_SUMMARY = "summary.json"
EVAL_PER_CLASS = "per_class.csv"
TENSORBOARD = "tensorboard"
LOCK = ".lock"
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


def write_json(path: Path, value: Any) -> None:
    """Whole or not at all, and durably (`atomic_write`)."""
    with atomic_write(path) as f:
        f.write(json.dumps(value, indent=1))


def _csv_text(columns: list[str], rows: list[dict], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


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
            f.write(_csv_text(columns, kept, header=True))

    def write(self, rows: list[dict]) -> None:
        if self.enabled:
            append_durably(self.path, _csv_text(self.columns, rows, header=False))


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


class RunDirectory:
    """One run's directory: where each file is, and the writers and readers of the small ones."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def checkpoint(self, kind: str) -> Path:
        return self.path / CHECKPOINTS / f"{kind}.pt"

    def has_checkpoint(self) -> bool:
        return self.checkpoint("last").exists()

    def snapshots(self) -> list[str]:
        """The checkpoint kinds of the run's cosine-restart snapshots, in epoch order."""
        found = [p.stem for p in (self.path / CHECKPOINTS).glob("snapshot-*.pt")]
        return sorted((k for k in found if k[9:].isdigit()), key=lambda k: int(k[9:]))

    def write_settings(self, experiment: dict[str, Any], options: dict[str, Any]) -> None:
        write_json(self.path / CONFIG, {"experiment": experiment, "options": options})

    def read_settings(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(experiment, options) as saved; FatError naming config.json when it is unreadable."""
        path = self.path / CONFIG
        return run_settings(read_json(path, "not a training run directory?"), str(path))

    def write_inputs(
        self, feature_config: LogMelConfig, vocabulary, normalizer, splits: dict[str, dict]
    ) -> None:
        """What the model reads: feature settings, vocabulary, normaliser, and per training
        split its generation, clip count and which clips train and which validate (so a
        resumed run or `fat evaluate` uses these clips, not a hold-out drawn again)."""
        write_json(
            self.path / INPUTS,
            {
                "feature_config": feature_config.to_dict(),
                "vocabulary": list(vocabulary),
                "normalizer": {"mean": normalizer.mean.tolist(), "std": normalizer.std.tolist()},
                "splits": splits,
            },
        )

    def read_inputs(self) -> dict[str, Any]:
        return read_json(self.path / INPUTS, "written when a run starts")

    def lock(self) -> ExclusiveLock:
        """Held by the process training this run (one at a time)."""
        self.path.mkdir(parents=True, exist_ok=True)
        return ExclusiveLock(self.path / LOCK, self.path, "training this run")

    def save_noisy_clips(self, clip_ids: list[str], source: str) -> None:
        write_clip_list(self.noisy_clips_file, clip_ids, f"noisy clips to train on, from {source}")

    @property
    def noisy_clips_file(self) -> Path:
        return self.path / NOISY_CLIPS

    @property
    def noisy_targets_file(self) -> Path:
        return self.path / NOISY_TARGETS

    def logs(self, groups: Sequence[str], start_epoch: int, step: int, enabled: bool) -> RunLogs:
        return RunLogs(self, groups, start_epoch, step, enabled)

    def eval_dir(self, split: str) -> Path:
        return self.path / EVAL / split

    def write_evaluation(self, out: Path, evaluation: Evaluation, facts: dict[str, Any]) -> None:
        """summary.json and per_class.csv of one `fat evaluate` into `out` (usually
        `eval_dir(split)`): one row per class present, worst first; a column per evaluated
        part when there are several."""
        out.mkdir(parents=True, exist_ok=True)
        several = len(evaluation.parts) > 1
        by_part = {p: evaluation.subsets[p].overall for p in evaluation.parts} if several else {}
        summary = {
            **facts,
            "n_clips": int(len(evaluation.truth)),
            "lwlrap": evaluation.lwlrap,
            "loss": evaluation.loss,
            "chance_lwlrap": evaluation.chance_lwlrap,
            **{f"lwlrap_{p}": value for p, value in by_part.items()},
        }
        write_json(out / EVAL_SUMMARY, summary)
        rows = [
            {
                "class": r.name,
                "lwlrap": r.lwlrap,
                "weight": r.weight,
                "positives": r.positives,
                "confused_with": ";".join(r.confused_with),
                **({f"lwlrap_{p}": v for p, v in r.by_part.items()} if several else {}),
            }
            for r in evaluation.class_results()
        ]
        columns = list(rows[0]) if rows else ["class", "lwlrap", "weight"]
        with atomic_write(out / EVAL_PER_CLASS, newline="") as f:
            f.write(_csv_text(columns, rows, header=True))


# ---- Reading a run for reports -------------------------------------------------------------


@dataclass
class EvalResult:
    """`fat evaluate` output for one split of a run."""

    split: str
    per_class: pd.DataFrame | None  # class, lwlrap, weight, maybe lwlrap_<part>, positives
    summary: dict[str, Any]


@dataclass
class RunHistory:
    """Everything a run directory records about how training went."""

    name: str
    path: Path
    experiment: dict[str, Any]
    inputs: dict[str, Any]  # inputs.json: feature config, vocabulary, normaliser
    metrics: pd.DataFrame  # one row per epoch, sorted by epoch
    steps: pd.DataFrame | None = None
    per_class: pd.DataFrame | None = None
    evals: dict[str, EvalResult] = field(default_factory=dict)

    @property
    def arch(self) -> str:
        return str(self.experiment.get("arch", "?"))

    @property
    def vocabulary(self) -> list[str]:
        return list(self.inputs.get("vocabulary", []))

    @property
    def epochs(self) -> int:
        return len(self.metrics)

    @property
    def best(self) -> tuple[int, float] | None:
        """(epoch, val_lwlrap) of the best validated epoch; None when nothing was validated."""
        values = column_of(self.metrics, "val_lwlrap")
        if values is None or not values.notna().any():
            return None
        row = int(values.idxmax())  # first epoch among ties, as the trainer keeps it
        return int(self.metrics["epoch"].iloc[row]), float(values.iloc[row])

    @property
    def final_lwlrap(self) -> float:
        return self.final("val_lwlrap")

    def final(self, metric: str) -> float:
        """The metric at the last epoch that recorded it; NaN when none did."""
        values = column_of(self.metrics, metric)
        values = values.dropna() if values is not None else None
        return math.nan if values is None or values.empty else float(values.iloc[-1])

    def grad_groups(self, frame: pd.DataFrame | None) -> list[str]:
        """Group names of the grad-norm columns of `frame` that hold at least one value."""
        if frame is None:
            return []
        return [
            c[len(GRAD_NORM_PREFIX) :]
            for c in frame.columns
            if c.startswith(GRAD_NORM_PREFIX) and frame[c].notna().any()
        ]

    def per_class_at(self, epoch: int, subset: str = ALL) -> tuple[pd.Series, pd.Series]:
        """(lwlrap, weight) per class of `subset` at `epoch`, indexed by class; absent classes
        (NaN lwlrap) are dropped. Both empty when val_per_class.csv has no such rows."""
        if self.per_class is None:
            empty = pd.Series(dtype=float)
            return empty, empty
        pc = self.per_class
        rows = pc[(pc["epoch"] == epoch) & (pc["subset"] == subset) & pc["lwlrap"].notna()]
        rows = rows.drop_duplicates("class", keep="last")
        return (
            pd.Series(rows["lwlrap"].to_numpy(), index=rows["class"].to_numpy(), name="lwlrap"),
            pd.Series(rows["weight"].to_numpy(), index=rows["class"].to_numpy(), name="weight"),
        )

    def per_class_epoch(self) -> int | None:
        """The epoch the per-class chart should show: the best one when val_per_class.csv has
        it (so the chart explains the headline number), else the latest it has."""
        if self.per_class is None:
            return None
        pc = self.per_class
        epochs = set(pc.loc[(pc["subset"] == ALL) & pc["lwlrap"].notna(), "epoch"].astype(int))
        if not epochs:
            return None
        best = self.best
        return best[0] if best is not None and best[0] in epochs else max(epochs)


def load_run(run_dir: Path | str) -> RunHistory:
    """Read a run directory. A missing or unreadable file raises FatError naming it and why;
    steps.csv, val_per_class.csv and eval/ are optional."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FatError(f"{run_dir}: not a run directory")
    experiment, options = RunDirectory(run_dir).read_settings()
    name = str(options.get("name") or "") or run_dir.resolve().name
    inputs = read_json(run_dir / INPUTS) if (run_dir / INPUTS).exists() else {}
    metrics = _read_csv(run_dir / METRICS, required=("epoch", "lr", "train_loss", "val_lwlrap"))
    metrics = _clean_epochs(metrics, run_dir / METRICS)
    steps = None
    if (run_dir / STEPS).exists():
        steps = _read_csv(run_dir / STEPS, required=("step", "epoch", "lr"))
        steps = steps.dropna(subset=["epoch"]).sort_values("step", kind="stable")
        steps = steps.reset_index(drop=True)
    per_class = None
    if (run_dir / VAL_PER_CLASS).exists():
        per_class = _read_csv(
            run_dir / VAL_PER_CLASS,
            required=VAL_PER_CLASS_COLUMNS,
            numeric=lambda c: c in ("epoch", "lwlrap", "weight"),
        )
    return RunHistory(
        name=name,
        path=run_dir,
        experiment=experiment,
        inputs=inputs,
        metrics=metrics,
        steps=steps,
        per_class=per_class,
        evals=_read_evals(run_dir / EVAL),
    )


def column_of(frame: pd.DataFrame | None, name: str) -> pd.Series | None:
    if frame is None or name not in frame.columns:
        return None
    return frame[name]


def has_values(frame: pd.DataFrame | None, name: str) -> bool:
    values = column_of(frame, name)
    return values is not None and bool(values.notna().any())


def read_json(path: Path, missing_hint: str = "") -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        hint = f" ({missing_hint})" if missing_hint else ""
        raise FatError(f"{path}: missing{hint}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FatError(f"{path}: not readable JSON ({one_line(e)})") from None
    if not isinstance(value, dict):
        raise FatError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _read_csv(
    path: Path,
    required: Sequence[str],
    numeric: Callable[[str], bool] = lambda column: True,
) -> pd.DataFrame:
    """The CSV with `numeric` columns as floats (empty and "nan" cells are NaN); anything
    malformed is a FatError naming the file, and the row and column where it can."""
    try:
        with warnings.catch_warnings():
            # pandas only warns when a row has more fields than the header and drops them;
            # for a log that means the file is garbled, so it must stop the report.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except FileNotFoundError:
        raise FatError(f"{path}: missing") from None
    except pd.errors.EmptyDataError:
        raise FatError(f"{path}: empty file (no header)") from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserWarning) as e:
        # ParserError is a ValueError
        raise FatError(f"{path}: not a readable CSV ({one_line(e)})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        shown = ", ".join(map(str, frame.columns[:6]))
        raise FatError(f"{path}: missing column(s) {', '.join(missing)} (header starts: {shown})")
    for column in frame.columns:
        if not numeric(column):
            continue
        raw = frame[column].fillna("").astype(str).str.strip()
        blank = raw.str.lower().isin(["", "nan"])
        values = pd.to_numeric(raw.mask(blank, "nan"), errors="coerce")
        bad = np.flatnonzero(values.isna() & ~blank)
        if len(bad):
            row = int(bad[0])
            raise FatError(
                f"{path}: data row {row + 1}, column {column!r}: not a number: {raw.iloc[row]!r}"
            )
        frame[column] = values.astype(float)
    return frame


def _clean_epochs(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    epochs = frame["epoch"]
    bad = np.flatnonzero(~np.isfinite(epochs) | (epochs != np.round(epochs)))
    if len(bad):
        row = int(bad[0])
        raise FatError(f"{path}: data row {row + 1}: epoch must be a whole number")
    frame["epoch"] = epochs.astype(int)
    # A resumed run rewrites the rows after its checkpoint; should one survive twice anyway,
    # the later row is the one the run continued from.
    frame = frame.drop_duplicates("epoch", keep="last").sort_values("epoch", kind="stable")
    return frame.reset_index(drop=True)


def _read_evals(eval_dir: Path) -> dict[str, EvalResult]:
    if not eval_dir.is_dir():
        return {}
    results = {}
    for split_dir in sorted(p for p in eval_dir.iterdir() if p.is_dir()):
        summary_path, table_path = split_dir / EVAL_SUMMARY, split_dir / EVAL_PER_CLASS
        if not summary_path.exists() and not table_path.exists():
            continue
        summary = read_json(summary_path) if summary_path.exists() else {}
        table = None
        if table_path.exists():
            table = _read_csv(
                table_path,
                required=("class", "lwlrap"),
                numeric=lambda c: c in ("lwlrap", "weight", "positives") or c.startswith("lwlrap_"),
            )
        results[split_dir.name] = EvalResult(split_dir.name, table, summary)
    return results

"""A finished or running run read back for reports: its settings, per-epoch metrics, steps,
per-class validation and `fat evaluate` results, as pandas tables (`load_run`)."""

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fat.core.errors import FatError, one_line
from fat.core.evaluation import ALL
from fat.runs.directory import (
    EVAL,
    EVAL_PER_CLASS,
    EVAL_SUMMARY,
    METRICS,
    STEPS,
    VAL_PER_CLASS,
    RunDirectory,
    read_json,
)
from fat.runs.logs import GRAD_NORM_PREFIX, VAL_PER_CLASS_COLUMNS


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
    run = RunDirectory.existing(run_dir)
    run_dir = run.path
    experiment, options = run.read_settings()
    name = str(options.get("name") or "") or run_dir.resolve().name
    inputs = run.saved_inputs()
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

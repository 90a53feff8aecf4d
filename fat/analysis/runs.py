"""Reading a training run directory (never writing it). What it holds:

config.json      {"config": {... "arch", "name"}, "feature_config", "vocabulary"}
metrics.csv      one row per epoch: epoch, lr, train_loss, val_loss, val_lwlrap, its
                 _curated/_noisy variants, swa_val_lwlrap, ..., "grad_norm:<group>" columns
steps.csv        optional, every few steps: step, epoch (fractional), lr, train_loss, grad norms
per_class.csv    optional, long format: epoch, subset, class, lwlrap, weight
eval/<split>/    optional, from `fat evaluate`: per_class.csv (class, lwlrap, weight, ...),
                 summary.json {"lwlrap": ...}
"""

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fat.errors import FatError

GRAD_PREFIX = "grad_norm:"


@dataclass
class EvalResult:
    """`fat evaluate` output for one split of a run."""

    split: str
    per_class: pd.DataFrame | None  # class, lwlrap, weight, maybe lwlrap_<subset>, positives
    summary: dict[str, Any]


@dataclass
class RunHistory:
    """Everything a run directory records about how training went."""

    name: str
    path: Path
    config: dict[str, Any]
    vocabulary: list[str]
    metrics: pd.DataFrame  # one row per epoch, sorted by epoch
    steps: pd.DataFrame | None = None
    per_class: pd.DataFrame | None = None
    evals: dict[str, EvalResult] = field(default_factory=dict)

    @property
    def train_config(self) -> dict[str, Any]:
        return self.config.get("train") or self.config.get("config") or {}

    @property
    def arch(self) -> str:
        return str(self.train_config.get("arch", "?"))

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
        values = column_of(self.metrics, "val_lwlrap")
        return math.nan if values is None or values.empty else float(values.iloc[-1])

    def grad_groups(self, frame: pd.DataFrame | None) -> list[str]:
        """Group names of the grad-norm columns of `frame` that hold at least one value."""
        if frame is None:
            return []
        return [
            c[len(GRAD_PREFIX) :]
            for c in frame.columns
            if c.startswith(GRAD_PREFIX) and frame[c].notna().any()
        ]

    def per_class_at(self, epoch: int, subset: str = "all") -> tuple[pd.Series, pd.Series]:
        """(lwlrap, weight) per class of `subset` at `epoch`, indexed by class; absent classes
        (NaN lwlrap) are dropped. Both empty when per_class.csv has no such rows."""
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
        """The epoch the per-class chart should show: the best one when per_class.csv has it
        (so the chart explains the headline number), else the latest it has."""
        if self.per_class is None:
            return None
        pc = self.per_class
        epochs = set(pc.loc[(pc["subset"] == "all") & pc["lwlrap"].notna(), "epoch"].astype(int))
        if not epochs:
            return None
        best = self.best
        return best[0] if best is not None and best[0] in epochs else max(epochs)


def load_run(run_dir: Path) -> RunHistory:
    """Read a run directory. A missing or unreadable file raises FatError naming it and why;
    steps.csv, per_class.csv and eval/ are optional."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FatError(f"{run_dir}: not a run directory")
    config = _read_config(run_dir / "config.json")
    vocabulary = config["vocabulary"]
    train = config.get("train") or config.get("config") or {}
    name = str(train.get("name") or "") or run_dir.resolve().name

    metrics = _read_csv(
        run_dir / "metrics.csv", required=("epoch", "lr", "train_loss", "val_lwlrap")
    )
    metrics = _clean_epochs(metrics, run_dir / "metrics.csv")
    steps = None
    if (run_dir / "steps.csv").exists():
        steps = _read_csv(run_dir / "steps.csv", required=("step", "epoch", "lr"))
        steps = steps.dropna(subset=["epoch"]).sort_values("step", kind="stable")
        steps = steps.reset_index(drop=True)
    per_class = None
    if (run_dir / "per_class.csv").exists():
        per_class = _read_csv(
            run_dir / "per_class.csv",
            required=("epoch", "subset", "class", "lwlrap", "weight"),
            numeric=lambda c: c in ("epoch", "lwlrap", "weight"),
        )
    return RunHistory(
        name=name,
        path=run_dir,
        config=config,
        vocabulary=vocabulary,
        metrics=metrics,
        steps=steps,
        per_class=per_class,
        evals=_read_evals(run_dir / "eval"),
    )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FatError(f"{path}: missing (not a training run directory?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FatError(f"{path}: not readable JSON ({_one_line(e)})") from e
    if not isinstance(config, dict):
        raise FatError(f"{path}: expected a JSON object, got {type(config).__name__}")
    vocabulary = config.get("vocabulary")
    if not (
        isinstance(vocabulary, list) and vocabulary and all(isinstance(v, str) for v in vocabulary)
    ):
        raise FatError(f"{path}: 'vocabulary' must be a non-empty list of class names")
    train = config.get("train", config.get("config", {}))
    if not isinstance(train, dict):
        raise FatError(f"{path}: 'train' must be a JSON object")
    return config


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
        raise FatError(f"{path}: not a readable CSV ({_one_line(e)})") from e
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
        summary_path, table_path = split_dir / "summary.json", split_dir / "per_class.csv"
        if not summary_path.exists() and not table_path.exists():
            continue
        summary: dict[str, Any] = {}
        if summary_path.exists():
            try:
                summary = json.loads(summary_path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise FatError(f"{summary_path}: not readable JSON ({_one_line(e)})") from e
            if not isinstance(summary, dict):
                raise FatError(f"{summary_path}: expected a JSON object")
        table = None
        if table_path.exists():
            table = _read_csv(
                table_path,
                required=("class", "lwlrap"),
                numeric=lambda c: c in ("lwlrap", "weight", "positives") or c.startswith("lwlrap_"),
            )
        results[split_dir.name] = EvalResult(split_dir.name, table, summary)
    return results


def as_runs(runs: Sequence["RunHistory | Path | str"]) -> list[RunHistory]:
    return [r if isinstance(r, RunHistory) else load_run(Path(r)) for r in runs]


def column_of(frame: pd.DataFrame | None, name: str) -> pd.Series | None:
    if frame is None or name not in frame.columns:
        return None
    return frame[name]


def has_values(frame: pd.DataFrame | None, name: str) -> bool:
    values = column_of(frame, name)
    return values is not None and bool(values.notna().any())


def final_value(run: RunHistory, metric: str) -> float:
    values = column_of(run.metrics, metric)
    values = values.dropna() if values is not None else None
    return math.nan if values is None or values.empty else float(values.iloc[-1])

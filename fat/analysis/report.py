"""Figures and a Markdown index page for one or more finished (or interrupted) training runs.

A run directory is only read here, never written. What it holds:

    config.json      {"train" (or "config"): {... "arch", "name"}, "feature_config", "vocabulary"}
    metrics.csv      one row per epoch: epoch, lr, train_loss, val_loss, val_lwlrap, its
                     _curated/_noisy variants, swa_val_lwlrap, ..., "grad_norm:<group>" columns
    steps.csv        optional, every few steps: step, epoch (fractional), lr, train_loss, grad norms
    per_class.csv    optional, long format: epoch, subset, class, lwlrap, weight
    eval/<split>/    optional, from `fat evaluate`: per_class.csv (class, lwlrap, weight, ...),
                     summary.json {"lwlrap": ...}

Every figure function writes one PNG at `DPI` and returns where. Figure sizes are multiples of a
quarter inch so the PNG is exactly width_in * DPI by height_in * DPI pixels (documented per
function). The per-class charts return a `BarChart` instead of a bare path: it carries the path
and the number of bars drawn, and is `os.PathLike`, so it can go wherever a path is expected.
"""

import json
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from fat.config import LogMelConfig  # noqa: E402
from fat.errors import FatError  # noqa: E402
from fat.plots import draw_logmel  # noqa: E402

DPI = 100
WIDTH_IN = 10.0  # every figure is 1000 px wide
CURVE_HEIGHT_IN = 5.0  # metric, loss and lr curves: 1000 x 500 px

GRAD_PREFIX = "grad_norm:"
_METRIC_LABELS = {
    "val_lwlrap": "val",
    "val_lwlrap_curated": "val curated",
    "val_lwlrap_noisy": "val noisy",
    "swa_val_lwlrap": "SWA val",
}
# val_lwlrap drags its relatives along: they answer "which split is hard?" and "does SWA help?".
_COMPANIONS = {"val_lwlrap": ("val_lwlrap_curated", "val_lwlrap_noisy", "swa_val_lwlrap")}
_STYLES = {"val_lwlrap_curated": "-.", "val_lwlrap_noisy": ":", "swa_val_lwlrap": "--"}
_OTHER_STYLES = ("-", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))


# ----------------------------------------------------------------------------- loading


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
        values = _column(self.metrics, "val_lwlrap")
        if values is None or not values.notna().any():
            return None
        row = int(values.idxmax())  # first epoch among ties, as the trainer keeps it
        return int(self.metrics["epoch"].iloc[row]), float(values.iloc[row])

    @property
    def final_lwlrap(self) -> float:
        values = _column(self.metrics, "val_lwlrap")
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


# ----------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class BarChart:
    """A per-class chart: where it was written, how many bars (classes) it shows, in the order
    drawn top to bottom. `os.fspath(chart)` / `Path(chart)` give the PNG path."""

    path: Path
    n_bars: int
    classes: tuple[str, ...]

    def __fspath__(self) -> str:
        return os.fspath(self.path)


def _as_runs(runs: Sequence["RunHistory | Path | str"]) -> list[RunHistory]:
    return [r if isinstance(r, RunHistory) else load_run(Path(r)) for r in runs]


def _column(frame: pd.DataFrame | None, name: str) -> pd.Series | None:
    if frame is None or name not in frame.columns:
        return None
    return frame[name]


def _has(frame: pd.DataFrame | None, name: str) -> bool:
    values = _column(frame, name)
    return values is not None and bool(values.notna().any())


def _run_colour(i: int):
    return plt.get_cmap("tab10")(i % 10)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No bbox_inches="tight": it would make the pixel size depend on the labels.
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _legend(ax, n_entries: int) -> None:
    # Beyond a handful of entries the legend would cover the curves; put it beside them.
    if n_entries > 6:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=8, loc="best")


def plot_metric_curves(
    runs: Sequence["RunHistory | Path"],
    path: Path,
    metrics: Sequence[str] = ("val_lwlrap",),
    title: str = "validation lwlrap per epoch",
) -> Path:
    """`metrics` per epoch for every run on one 1000x500 px plot, one colour per run. With
    val_lwlrap come, where recorded, the curated and noisy subsets (dash-dot, dotted) and the
    SWA model (dashed); a star marks each run's best epoch."""
    runs = _as_runs(runs)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, CURVE_HEIGHT_IN), layout="constrained")
    columns = list(metrics)
    for m in metrics:
        columns += [c for c in _COMPANIONS.get(m, ()) if c not in columns]
    entries = 0
    for i, run in enumerate(runs):
        others = iter(_OTHER_STYLES)
        for column in columns:
            style = _STYLES.get(column) or next(others, "-")
            if not _has(run.metrics, column):
                continue
            ax.plot(
                run.metrics["epoch"],
                run.metrics[column],
                linestyle=style,
                marker="o",
                markersize=3,
                color=_run_colour(i),
                label=f"{run.name}: {_METRIC_LABELS.get(column, column)}",
            )
            entries += 1
        if "val_lwlrap" in columns and run.best is not None:
            ax.plot(*run.best, marker="*", markersize=14, color=_run_colour(i), linestyle="none")
    if not entries:
        plt.close(fig)
        raise FatError(f"no run records any of {', '.join(columns)} with a value")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("lwlrap" if all("lwlrap" in c for c in metrics) else ", ".join(metrics))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend(ax, entries)
    return _save(fig, path)


def plot_loss_curves(
    runs: Sequence["RunHistory | Path"], path: Path, title: str = "loss per epoch"
) -> Path:
    """Training (solid) and validation (dashed) loss per epoch, one colour per run; 1000x500 px.
    The y axis turns logarithmic when the losses span more than a factor of 10."""
    runs = _as_runs(runs)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, CURVE_HEIGHT_IN), layout="constrained")
    entries, values = 0, []
    for i, run in enumerate(runs):
        for column, style, label in (("train_loss", "-", "train"), ("val_loss", "--", "val")):
            if not _has(run.metrics, column):
                continue
            ax.plot(
                run.metrics["epoch"],
                run.metrics[column],
                linestyle=style,
                marker="o",
                markersize=3,
                color=_run_colour(i),
                label=f"{run.name}: {label}",
            )
            values.append(run.metrics[column].dropna().to_numpy())
            entries += 1
    if not entries:
        plt.close(fig)
        raise FatError("no run records train_loss or val_loss")
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 10:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("BCE loss")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    _legend(ax, entries)
    return _save(fig, path)


def plot_lr_schedule(
    runs: Sequence["RunHistory | Path"], path: Path, title: str = "learning rate schedule"
) -> Path:
    """Learning rate against (fractional) epoch from steps.csv, or per epoch from metrics.csv
    for runs without it; 1000x500 px."""
    runs = _as_runs(runs)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, CURVE_HEIGHT_IN), layout="constrained")
    entries = 0
    for i, run in enumerate(runs):
        if _has(run.steps, "lr"):
            ax.plot(run.steps["epoch"], run.steps["lr"], color=_run_colour(i), label=run.name)
        elif _has(run.metrics, "lr"):
            ax.plot(
                run.metrics["epoch"],
                run.metrics["lr"],
                color=_run_colour(i),
                marker="o",
                markersize=3,
                label=f"{run.name} (end of each epoch)",
            )
        else:
            continue
        entries += 1
    if not entries:
        plt.close(fig)
        raise FatError("no run records a learning rate")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend(ax, entries)
    return _save(fig, path)


def plot_grad_norms(
    runs: Sequence["RunHistory | Path"],
    path: Path,
    title: str = "gradient L2 norm per layer group",
) -> Path:
    """One subplot per run (shared log y axis), one colour per layer group, from steps.csv when
    present else the per-epoch means in metrics.csv. Zero norms cannot sit on a log axis, so
    they are drawn on a dotted floor line a decade below the smallest positive norm, with
    triangles: a group whose gradient died shows as a curve dropping onto the floor.
    Size: 1000 px wide, (1.5 + 3 * runs shown) * 100 px high."""
    runs = _as_runs(runs)
    panels = []
    for run in runs:
        if run.grad_groups(run.steps):
            panels.append((run, run.steps, "every few steps"))
        elif run.grad_groups(run.metrics):
            panels.append((run, run.metrics, "epoch means"))
    if not panels:
        raise FatError(f"no run records {GRAD_PREFIX}<group> columns")
    positive = np.concatenate(
        [
            frame[GRAD_PREFIX + g].to_numpy(dtype=float)
            for run, frame, _ in panels
            for g in run.grad_groups(frame)
        ]
    )
    positive = positive[np.isfinite(positive) & (positive > 0)]
    floor = float(positive.min()) / 10 if len(positive) else 1e-12
    groups = list(dict.fromkeys(g for run, frame, _ in panels for g in run.grad_groups(frame)))
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    colours = {g: cmap(i % cmap.N) for i, g in enumerate(groups)}

    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(WIDTH_IN, 1.5 + 3.0 * len(panels)),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for ax, (run, frame, source) in zip(axes[:, 0], panels, strict=True):
        epoch = frame["epoch"].to_numpy(dtype=float)
        any_zero = False
        for group in run.grad_groups(frame):
            norm = frame[GRAD_PREFIX + group].to_numpy(dtype=float)
            zero = norm <= 0  # NaN (not logged) stays a gap in the line
            ax.plot(epoch, np.where(zero, floor, norm), color=colours[group], label=group)
            if zero.any():
                any_zero = True
                ax.plot(epoch[zero], np.full(zero.sum(), floor), "v", color=colours[group])
        if any_zero:
            ax.axhline(floor, color="gray", linestyle=":", label="zero (drawn at floor)")
        ax.set_yscale("log")
        ax.set_title(f"{run.name} ({source})", fontsize=10)
        ax.set_ylabel("grad L2 norm")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axes[-1, 0].set_xlabel("epoch")
    fig.suptitle(title)
    return _save(fig, path)


def _per_class_height(n: int, per_bar: float) -> float:
    # Room per bar keeps the class names from overlapping; the legend sits below the axes
    # rather than on them, where it would hide the longest bars when all classes score well.
    return max(4.0, 1.5 + per_bar * n)


def plot_per_class(
    per_class: pd.Series,
    path: Path,
    title: str,
    *,
    weights: pd.Series | None = None,
) -> BarChart:
    """lwlrap per class (a Series indexed by class name; NaN = class absent, dropped) as a
    horizontal bar chart sorted best to worst, with the unweighted mean over the classes shown
    and, given `weights` (the per-class label weights), the weighted mean, which is the overall
    lwlrap. Size: 1000 px wide, max(400, 150 + 25 * bars) px high. Returns a BarChart whose
    `n_bars` is the number of classes drawn."""
    values = pd.Series(per_class, dtype=float).dropna()
    if values.empty:
        raise FatError(f"{title}: no class has an lwlrap value")
    if values.index.has_duplicates:
        raise FatError(
            f"{title}: classes listed twice: {sorted(set(values.index[values.index.duplicated()]))}"
        )
    values = values.sort_values(ascending=False, kind="stable")
    n = len(values)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, _per_class_height(n, 0.25)), layout="constrained")
    y = np.arange(n)
    ax.barh(y, values.to_numpy(), height=0.75, color=plt.get_cmap("RdYlGn")(values.clip(0, 1)))
    for yi, v in zip(y, values.to_numpy(), strict=True):
        ax.text(v + 0.005, yi, f"{v:.2f}", va="center", fontsize=7)
    ax.set_yticks(y, labels=[str(c) for c in values.index], fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)  # best at the top
    ax.set_xlim(0, 1.08)
    mean = float(values.mean())
    ax.axvline(mean, color="black", linestyle="--", label=f"mean of {n} classes: {mean:.3f}")
    if weights is not None:
        w = pd.Series(weights, dtype=float).reindex(values.index).fillna(0.0)
        if w.sum() > 0:
            overall = float((values * w).sum() / w.sum())
            ax.axvline(
                overall,
                color="tab:blue",
                linestyle=":",
                label=f"weighted by label count (lwlrap): {overall:.3f}",
            )
    ax.set_xlabel("lwlrap")
    ax.set_ylabel("class")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    chart = BarChart(_save(fig, path), n, tuple(str(c) for c in values.index))
    return chart


def plot_per_class_split(curated: pd.Series, noisy: pd.Series, path: Path, title: str) -> BarChart:
    """Curated vs noisy lwlrap per class as paired horizontal bars, classes present in either
    subset, sorted by curated lwlrap (classes only in noisy last); dashed lines mark each
    subset's mean. Size: 1000 px wide, max(400, 150 + 37.5 * classes) px high (truncated).
    Returns a BarChart whose `n_bars` is the number of classes (bar pairs)."""
    cur = pd.Series(curated, dtype=float).dropna()
    noi = pd.Series(noisy, dtype=float).dropna()
    if cur.empty and noi.empty:
        raise FatError(f"{title}: neither subset has a class with an lwlrap value")
    for subset, s in (("curated", cur), ("noisy", noi)):
        if s.index.has_duplicates:
            raise FatError(f"{title}: {subset} lists a class twice")
    only_noisy = noi.drop(cur.index, errors="ignore").sort_values(ascending=False, kind="stable")
    classes = list(cur.sort_values(ascending=False, kind="stable").index) + list(only_noisy.index)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, _per_class_height(n, 0.375)), layout="constrained")
    y = np.arange(n)
    half = 0.38
    for s, offset, colour, label in (
        (cur, -half / 2, "tab:blue", "curated"),
        (noi, half / 2, "tab:orange", "noisy"),
    ):
        v = s.reindex(classes).to_numpy()
        present = ~np.isnan(v)
        mean_text = f"mean {s.mean():.3f}" if len(s) else "none"
        ax.barh(
            y[present] + offset,
            v[present],
            height=half,
            color=colour,
            label=f"{label} ({len(s)} classes, {mean_text})",
        )
        if len(s):
            ax.axvline(float(s.mean()), color=colour, linestyle="--", linewidth=1)
    ax.set_yticks(y, labels=[str(c) for c in classes], fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("lwlrap")
    ax.set_ylabel("class")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    return BarChart(_save(fig, path), n, tuple(str(c) for c in classes))


def plot_clip_prediction(
    features: np.ndarray,
    cfg: LogMelConfig,
    vocabulary: Sequence[str],
    scores: np.ndarray,
    true_labels: Sequence[str],
    path: Path,
    frame_probs: np.ndarray | None = None,
    top_k: int = 5,
    *,
    title: str | None = None,
) -> Path:
    """One clip: its log-mel (n_mels, T) on top; with `frame_probs` (T', n_classes), T' frames
    spread evenly over the clip, a time-aligned heat-map of the top-k classes' frame
    probabilities under it; then the top-k clip scores as bars, true labels in green, true
    labels outside the top-k appended with their rank. Size: 1000 px wide, (3.5 + [1 + 0.25 k]
    + 1 + 0.25 * bars) * 100 px high, the bracket only with frame_probs."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] != cfg.n_mels or features.shape[1] == 0:
        raise FatError(f"features must be (n_mels={cfg.n_mels}, frames), got {features.shape}")
    vocabulary = list(vocabulary)
    n_classes = len(vocabulary)
    scores = np.asarray(scores, dtype=float).ravel()
    if len(scores) != n_classes:
        raise FatError(f"scores has {len(scores)} values for {n_classes} classes")
    unknown = [label for label in true_labels if label not in vocabulary]
    if unknown:
        raise FatError(f"true labels not in the vocabulary: {unknown}")
    if frame_probs is not None:
        frame_probs = np.asarray(frame_probs, dtype=float)
        if frame_probs.ndim != 2 or frame_probs.shape[1] != n_classes or not len(frame_probs):
            raise FatError(
                f"frame_probs must be (frames, {n_classes} classes), got {frame_probs.shape}"
            )
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(n_classes, dtype=int)
    rank[order] = np.arange(1, n_classes + 1)
    k = max(1, min(top_k, n_classes))
    top = [int(c) for c in order[:k]]
    truth = {vocabulary.index(label) for label in true_labels}
    missed = sorted((c for c in truth if c not in top), key=lambda c: rank[c])
    bars = top + missed

    seconds = features.shape[1] / cfg.frames_per_second
    heights = (
        [3.5] + ([1.0 + 0.25 * k] if frame_probs is not None else []) + [1.0 + 0.25 * len(bars)]
    )
    fig = plt.figure(figsize=(WIDTH_IN, sum(heights)), layout="constrained")
    # A narrow second column holds the colour bars, so the spectrogram and the heat-map keep
    # exactly the same width and their time axes line up.
    grid = fig.add_gridspec(len(heights), 2, height_ratios=heights, width_ratios=[50, 1])
    spec_ax = fig.add_subplot(grid[0, 0])
    image = draw_logmel(spec_ax, features, cfg)
    if frame_probs is None:  # otherwise the heat-map below carries the shared time axis
        spec_ax.set_xlabel("time (s)")
    truth_text = ", ".join(true_labels) if true_labels else "none"
    spec_ax.set_title(title or f"{Path(path).stem}\ntrue labels: {truth_text}", fontsize=10)
    fig.colorbar(image, cax=fig.add_subplot(grid[0, 1]), label="dB")

    def mark_truth(ax, classes: list[int]) -> None:
        for tick, c in zip(ax.get_yticklabels(), classes, strict=True):
            if c in truth:
                tick.set_color("tab:green")
                tick.set_fontweight("bold")

    if frame_probs is not None:
        heat_ax = fig.add_subplot(grid[1, 0], sharex=spec_ax)
        heat = heat_ax.imshow(
            frame_probs[:, top].T,
            origin="upper",
            aspect="auto",
            cmap="viridis",
            vmin=0,
            vmax=1,
            extent=(0, seconds, k, 0),
            interpolation="nearest",
        )
        heat_ax.set_yticks(np.arange(k) + 0.5, labels=[vocabulary[c] for c in top], fontsize=8)
        mark_truth(heat_ax, top)
        heat_ax.set_xlabel("time (s)")
        heat_ax.set_title(f"frame-level probability, top {k} classes", fontsize=9)
        fig.colorbar(heat, cax=fig.add_subplot(grid[1, 1]), label="probability")

    bar_ax = fig.add_subplot(grid[-1, 0])
    y = np.arange(len(bars))
    colours = ["tab:green" if c in truth else "tab:gray" for c in bars]
    bar_ax.barh(y, scores[bars], color=colours, height=0.7)
    labels = [vocabulary[c] if c in top else f"{vocabulary[c]} (rank {rank[c]})" for c in bars]
    bar_ax.set_yticks(y, labels=labels, fontsize=8)
    mark_truth(bar_ax, bars)
    bar_ax.set_ylim(len(bars) - 0.5, -0.5)
    if missed:
        bar_ax.axhline(k - 0.5, color="black", linestyle=":", linewidth=1)
    probabilities = scores.min() >= 0 and scores.max() <= 1
    if probabilities:
        bar_ax.set_xlim(0, 1.1)
    for yi, c in zip(y, bars, strict=True):
        bar_ax.text(scores[c], yi, f" {scores[c]:.2f}", va="center", fontsize=7)
    bar_ax.set_xlabel("predicted probability" if probabilities else "score")
    bar_ax.set_title(f"top {k} predictions", fontsize=9, loc="left")
    # Above the axes, beside the title: inside, it would hide a long bar.
    bar_ax.legend(
        handles=[
            Patch(color="tab:green", label="true label"),
            Patch(color="tab:gray", label="not a label"),
        ],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=2,
        fontsize=8,
        frameon=False,
        borderaxespad=0.2,
    )
    return _save(fig, path)


# ----------------------------------------------------------------------------- report


@dataclass
class _Figure:
    heading: str
    path: Path
    caption: str


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "run"


def _unique_slugs(names: Sequence[str]) -> list[str]:
    slugs, seen = [], set()
    for name in names:
        slug, i = _slug(name), 2
        while slug in seen:
            slug, i = f"{_slug(name)}_{i}", i + 1
        seen.add(slug)
        slugs.append(slug)
    return slugs


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _link(path: Path, out: Path) -> str:
    target = Path(os.path.relpath(Path(path).resolve(), out.resolve())).as_posix()
    return f"<{target}>" if re.search(r"[\s()<>]", target) else target


def _runs_table(runs: list[RunHistory]) -> list[str]:
    has_swa = any(_has(r.metrics, "swa_val_lwlrap") for r in runs)
    has_eval = any(r.evals for r in runs)
    header = ["run", "arch", "epochs", "best val lwlrap", "best epoch", "final val lwlrap"]
    header += ["final SWA lwlrap"] * has_swa + ["eval lwlrap"] * has_eval
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        best = run.best
        row = [
            _cell(run.name),
            _cell(run.arch),
            str(run.epochs),
            _fmt(best[1]) if best else "n/a",
            str(best[0]) if best else "n/a",
            _fmt(run.final_lwlrap),
        ]
        if has_swa:
            swa = _column(run.metrics, "swa_val_lwlrap")
            row.append(_fmt(float(swa.iloc[-1])) if swa is not None and len(swa) else "n/a")
        if has_eval:
            row.append(
                ", ".join(
                    f"{split} {_fmt(_float(e.summary.get('lwlrap')))}"
                    for split, e in run.evals.items()
                )
                or "n/a"
            )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _run_figures(run: RunHistory, slug: str, out: Path) -> list[_Figure]:
    figures = []
    epoch = run.per_class_epoch()
    if epoch is not None:
        values, weights = run.per_class_at(epoch, "all")
        best = run.best
        which = "best" if best is not None and best[0] == epoch else "latest recorded"
        chart = plot_per_class(
            values,
            out / f"{slug}_per_class_epoch{epoch}.png",
            f"{run.name}: validation lwlrap per class, epoch {epoch} ({which})",
            weights=weights,
        )
        figures.append(
            _Figure(
                f"{run.name}: per-class lwlrap, epoch {epoch}",
                chart.path,
                f"Validation lwlrap of the {chart.n_bars} classes present at the {which} epoch, "
                "best at the top. The weighted mean is the epoch's overall lwlrap; classes at "
                "the bottom are where the model fails.",
            )
        )
        curated, _ = run.per_class_at(epoch, "curated")
        noisy, _ = run.per_class_at(epoch, "noisy")
        if len(curated) and len(noisy):
            chart = plot_per_class_split(
                curated,
                noisy,
                out / f"{slug}_curated_vs_noisy_epoch{epoch}.png",
                f"{run.name}: curated vs noisy validation lwlrap per class, epoch {epoch}",
            )
            figures.append(
                _Figure(
                    f"{run.name}: curated vs noisy, epoch {epoch}",
                    chart.path,
                    "Per-class lwlrap on the curated and the noisy validation clips. Classes "
                    "far worse on noisy clips are those whose noisy labels are least reliable.",
                )
            )
    for split, result in run.evals.items():
        table = result.per_class
        if table is None or not table["lwlrap"].notna().any():
            continue
        table = table.drop_duplicates("class", keep="last").set_index("class")
        weights = table["weight"] if "weight" in table.columns else None
        overall = _float(result.summary.get("lwlrap"))
        chart = plot_per_class(
            table["lwlrap"],
            out / f"{slug}_eval_{_slug(split)}_per_class.png",
            f"{run.name}: {split} lwlrap per class (lwlrap {_fmt(overall)})",
            weights=weights,
        )
        figures.append(
            _Figure(
                f"{run.name}: evaluation on {split}",
                chart.path,
                f"Per-class lwlrap from `fat evaluate` on {split} ({chart.n_bars} classes with "
                "labels there), best at the top.",
            )
        )
        if _has(table, "lwlrap_curated") and _has(table, "lwlrap_noisy"):
            chart = plot_per_class_split(
                table["lwlrap_curated"],
                table["lwlrap_noisy"],
                out / f"{slug}_eval_{_slug(split)}_curated_vs_noisy.png",
                f"{run.name}: {split}, curated vs noisy lwlrap per class",
            )
            figures.append(
                _Figure(
                    f"{run.name}: evaluation on {split}, curated vs noisy",
                    chart.path,
                    "The evaluation's per-class lwlrap split by where the clips came from.",
                )
            )
    return figures


# A run folder named like "lsoft-s2" or "lsoft_seed2" is seed 2 of the configuration "lsoft".
SEED_SUFFIX = re.compile(r"[-_]s(?:eed)?\d+$")


def seed_groups(runs: Sequence[RunHistory]) -> dict[str, list[RunHistory]]:
    """Runs grouped by folder name without its seed suffix, in first-seen order."""
    groups: dict[str, list[RunHistory]] = {}
    for run in runs:
        groups.setdefault(SEED_SUFFIX.sub("", run.path.name), []).append(run)
    return groups


def final_value(run: RunHistory, metric: str) -> float:
    values = _column(run.metrics, metric)
    values = values.dropna() if values is not None else None
    return math.nan if values is None or values.empty else float(values.iloc[-1])


def group_summary(groups: dict[str, list[RunHistory]], metric: str) -> pd.DataFrame:
    """Per configuration: seeds, mean, std (ddof 1), min and max of the final `metric`."""
    rows = []
    for name, runs in groups.items():
        values = np.array([final_value(r, metric) for r in runs])
        values = values[~np.isnan(values)]
        rows.append(
            {
                "config": name,
                "seeds": len(values),
                "mean": values.mean() if len(values) else math.nan,
                "std": values.std(ddof=1) if len(values) > 1 else math.nan,
                "min": values.min() if len(values) else math.nan,
                "max": values.max() if len(values) else math.nan,
            }
        )
    return pd.DataFrame(rows)


def plot_group_comparison(summary: pd.DataFrame, groups: dict, metric: str, path: Path) -> Path:
    """Mean final `metric` per configuration with a +-1 std bar and each seed as a dot."""
    n = len(summary)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, max(3.0, 1.2 + 0.45 * n)), layout="constrained")
    y = np.arange(n)[::-1]
    ax.barh(y, summary["mean"], xerr=summary["std"].fillna(0), color="#9ecae1", capsize=4)
    for yi, name in zip(y, summary["config"], strict=True):
        values = [final_value(r, metric) for r in groups[name]]
        ax.plot(values, [yi] * len(values), "o", color="#08519c", markersize=4)
    ax.set_yticks(y, summary["config"])
    ax.set_xlabel(f"final {_METRIC_LABELS.get(metric, metric)} (bar: mean +- std; dots: seeds)")
    ax.set_title(f"{metric} by configuration, same budget")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _comparison_section(histories: list[RunHistory], out: Path) -> list[str]:
    """A table and a chart comparing configurations across seeds, when runs repeat seeds."""
    groups = seed_groups(histories)
    if not any(len(g) > 1 for g in groups.values()):
        return []
    metric = (
        "val_lwlrap_curated"
        if all(not math.isnan(final_value(r, "val_lwlrap_curated")) for r in histories)
        else "val_lwlrap"
    )
    summary = group_summary(groups, metric)
    summary.to_csv(out / "comparison.csv", index=False)
    lines = [
        "## Comparison across seeds",
        "",
        f"Final-epoch `{metric}` per configuration (mean +- std over seeds; also comparison.csv).",
        "",
        "| configuration | seeds | mean | std | min | max |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary.itertuples():
        lines.append(
            f"| {_cell(row.config)} | {row.seeds} | {_fmt(row.mean)} | {_fmt(row.std)} "
            f"| {_fmt(row.min)} | {_fmt(row.max)} |"
        )
    chart = plot_group_comparison(summary, groups, metric, out / "comparison.png")
    lines += ["", f"![configurations compared]({_link(chart, out)})", ""]
    return lines


def write_report(
    runs: Sequence[Path], out: Path, clip_figures: Sequence[Path] | None = None
) -> Path:
    """Load `runs`, write into `out` every figure their files support (lwlrap and loss curves,
    learning rate, gradient norms, per-class lwlrap at each run's best epoch, curated vs noisy,
    evaluation results) and `out/index.md` with a table of runs and every figure (plus
    `clip_figures`, already written by the caller) under a heading with a caption. Returns the
    path of index.md."""
    if not runs:
        raise FatError("no runs to report on")
    histories = [load_run(Path(r)) for r in runs]
    counts = Counter(r.name for r in histories)
    for run in histories:
        if counts[run.name] > 1:  # legends and the table must tell such runs apart
            run.name = f"{run.name} [{run.path.name}]"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = ", ".join(r.name for r in histories)

    curves: list[_Figure] = []
    if any(_has(r.metrics, "val_lwlrap") for r in histories):
        curves.append(
            _Figure(
                "Validation lwlrap",
                plot_metric_curves(histories, out / "lwlrap.png"),
                "Validation lwlrap per epoch (solid); where recorded, on curated (dash-dot) and "
                "noisy (dotted) clips and for the SWA model (dashed). A star marks each run's "
                "best epoch.",
            )
        )
    if any(_has(r.metrics, "train_loss") or _has(r.metrics, "val_loss") for r in histories):
        curves.append(
            _Figure(
                "Loss",
                plot_loss_curves(histories, out / "loss.png"),
                "Training (solid) and validation (dashed) loss per epoch. Validation loss "
                "rising while training loss falls is overfitting.",
            )
        )
    if any(_has(r.steps, "lr") or _has(r.metrics, "lr") for r in histories):
        curves.append(
            _Figure(
                "Learning rate",
                plot_lr_schedule(histories, out / "lr.png"),
                "The learning rate the optimizer used, against (fractional) epoch.",
            )
        )
    if any(r.grad_groups(r.steps) or r.grad_groups(r.metrics) for r in histories):
        curves.append(
            _Figure(
                "Gradient norms",
                plot_grad_norms(histories, out / "grad_norms.png"),
                "L2 norm of the gradient of each layer group (log scale). Zeros are drawn on "
                "the dotted floor line: a group stuck there has stopped learning.",
            )
        )

    sections: list[tuple[str, list[_Figure]]] = [("Training curves", curves)]
    for run, slug in zip(histories, _unique_slugs([r.name for r in histories]), strict=True):
        sections.append((f"Run {run.name}", _run_figures(run, slug, out)))
    clips = []
    for p in clip_figures or []:
        if not Path(p).is_file():
            raise FatError(f"{p}: clip figure does not exist")
        clips.append(
            _Figure(
                Path(p).stem,
                Path(p),
                "Log-mel spectrogram, the clip's top predictions (true labels in green) and, "
                "for models with frame outputs, where in time each class is detected.",
            )
        )
    sections.append(("Clip predictions", clips))

    comparison_lines = _comparison_section(histories, out)
    lines = [
        "# Training report",
        "",
        f"Runs: {names}.",
        "",
        *comparison_lines,
        "## Runs",
        "",
        *_runs_table(histories),
        "",
        *[f"- {_cell(r.name)}: `{r.path}`" for r in histories],
        "",
    ]
    for heading, figures in sections:
        if not figures:
            continue
        lines += [f"## {heading}", ""]
        for figure in figures:
            lines += [
                f"### {figure.heading}",
                "",
                f"![{figure.heading}]({_link(figure.path, out)})",
                "",
                f"*{figure.caption}*",
                "",
            ]
    index = out / "index.md"
    index.write_text("\n".join(lines))
    return index

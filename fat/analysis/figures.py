"""Figures of training runs. Every plot_ function writes one PNG at `DPI` and returns where;
the _figure functions behind some of them return the drawn Figure, for a caller to inspect.

Names of runs, classes, splits and layer groups go through `literal`, so they are drawn as
written. Figure sizes are multiples of a quarter inch so the PNG is exactly width_in * DPI by
height_in * DPI pixels (documented per function). The per-class charts return a `BarChart`
instead of a bare path: it carries the path and the number of bars drawn, and is
`os.PathLike`, so it can go wherever a path is expected.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from fat.analysis.plotting import draw_logmel, literal, save_png  # noqa: E402
from fat.core.errors import FatError  # noqa: E402
from fat.core.features import LogMelConfig  # noqa: E402
from fat.runs.history import RunHistory, has_values, load_run  # noqa: E402
from fat.runs.logs import GRAD_NORM_PREFIX  # noqa: E402

DPI = 100
WIDTH_IN = 10.0  # every figure is 1000 px wide
CURVE_HEIGHT_IN = 5.0  # metric, loss and lr curves: 1000 x 500 px

_METRIC_LABELS = {
    "val_lwlrap": "val",
    "val_lwlrap_curated": "val curated",
    "val_lwlrap_noisy": "val noisy",
    "swa_val_lwlrap": "SWA val",
    "ema_val_lwlrap": "EMA val",
}
# val_lwlrap drags its relatives along: they answer "which split is hard?" and "does SWA help?".
_COMPANIONS = {
    "val_lwlrap": ("val_lwlrap_curated", "val_lwlrap_noisy", "swa_val_lwlrap", "ema_val_lwlrap")
}
_STYLES = {
    "val_lwlrap_curated": "-.",
    "val_lwlrap_noisy": ":",
    "swa_val_lwlrap": "--",
    "ema_val_lwlrap": (0, (5, 1, 1, 1)),
}
_OTHER_STYLES = ("-", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))


@dataclass(frozen=True)
class BarChart:
    """A per-class chart: where it was written, how many bars (classes) it shows, in the order
    drawn top to bottom. `os.fspath(chart)` / `Path(chart)` give the PNG path."""

    path: Path
    n_bars: int
    classes: tuple[str, ...]

    def __fspath__(self) -> str:
        return os.fspath(self.path)


def as_runs(runs: Sequence[RunHistory | Path | str]) -> list[RunHistory]:
    return [r if isinstance(r, RunHistory) else load_run(Path(r)) for r in runs]


def _run_colour(i: int):
    return plt.get_cmap("tab10")(i % 10)


def _epoch_curve(ax, run: RunHistory, column: str, style, colour: int, label: str) -> bool:
    """`column` of run's metrics per epoch, in the run's colour; False when it has no value."""
    if not has_values(run.metrics, column):
        return False
    ax.plot(
        run.metrics["epoch"],
        run.metrics[column],
        linestyle=style,
        marker="o",
        markersize=3,
        color=_run_colour(colour),
        label=literal(f"{run.name}: {label}"),
    )
    return True


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
    runs = as_runs(runs)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, CURVE_HEIGHT_IN), layout="constrained")
    columns = list(metrics)
    for m in metrics:
        columns += [c for c in _COMPANIONS.get(m, ()) if c not in columns]
    entries = 0
    for i, run in enumerate(runs):
        others = iter(_OTHER_STYLES)
        for column in columns:
            style = _STYLES.get(column) or next(others, "-")
            if _epoch_curve(ax, run, column, style, i, _METRIC_LABELS.get(column, column)):
                entries += 1
        if "val_lwlrap" in columns and run.best is not None:
            ax.plot(*run.best, marker="*", markersize=14, color=_run_colour(i), linestyle="none")
    if not entries:
        plt.close(fig)
        raise FatError(f"no run records any of {', '.join(columns)} with a value")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("lwlrap" if all("lwlrap" in c for c in metrics) else literal(", ".join(metrics)))
    ax.set_title(literal(title))
    ax.grid(alpha=0.3)
    _legend(ax, entries)
    return save_png(fig, path, DPI)


def plot_loss_curves(
    runs: Sequence["RunHistory | Path"], path: Path, title: str = "loss per epoch"
) -> Path:
    """Training (solid) and validation (dashed) loss per epoch, one colour per run; 1000x500 px.
    The y axis turns logarithmic when the losses span more than a factor of 10."""
    runs = as_runs(runs)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, CURVE_HEIGHT_IN), layout="constrained")
    entries, values = 0, []
    for i, run in enumerate(runs):
        for column, style, label in (("train_loss", "-", "train"), ("val_loss", "--", "val")):
            if _epoch_curve(ax, run, column, style, i, label):
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
    ax.set_title(literal(title))
    ax.grid(alpha=0.3, which="both")
    _legend(ax, entries)
    return save_png(fig, path, DPI)


def plot_lr_schedule(
    runs: Sequence["RunHistory | Path"], path: Path, title: str = "learning rate schedule"
) -> Path:
    """Learning rate against (fractional) epoch from steps.csv, or per epoch from metrics.csv
    for runs without it; 1000x500 px."""
    runs = as_runs(runs)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, CURVE_HEIGHT_IN), layout="constrained")
    entries = 0
    for i, run in enumerate(runs):
        if has_values(run.steps, "lr"):
            ax.plot(
                run.steps["epoch"], run.steps["lr"], color=_run_colour(i), label=literal(run.name)
            )
        elif has_values(run.metrics, "lr"):
            ax.plot(
                run.metrics["epoch"],
                run.metrics["lr"],
                color=_run_colour(i),
                marker="o",
                markersize=3,
                label=literal(f"{run.name} (end of each epoch)"),
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
    ax.set_title(literal(title))
    ax.grid(alpha=0.3)
    _legend(ax, entries)
    return save_png(fig, path, DPI)


def plot_grad_norms(
    runs: Sequence["RunHistory | Path"],
    path: Path,
    title: str = "gradient L2 norm per layer group",
) -> Path:
    """`grad_norms_figure` of `runs`, written to `path`."""
    return save_png(grad_norms_figure(runs, title), path, DPI)


def grad_norms_figure(
    runs: Sequence["RunHistory | Path"], title: str = "gradient L2 norm per layer group"
) -> Figure:
    """One subplot per run (shared log y axis), one colour per layer group, from steps.csv when
    present else the per-epoch means in metrics.csv. Zero norms cannot sit on a log axis, so
    they are drawn on a dotted floor line a decade below the smallest positive norm, with
    triangles: a group whose gradient died shows as a curve dropping onto the floor. Panels
    fill 1 column for up to 3 runs, 2 up to 8, else 3, under one legend of layer groups.
    Size: 1000 px wide, (1.5 + 3 * rows of panels) * 100 px high."""
    runs = as_runs(runs)
    panels = []
    for run in runs:
        if run.grad_groups(run.steps):
            panels.append((run, run.steps, "every few steps"))
        elif run.grad_groups(run.metrics):
            panels.append((run, run.metrics, "epoch means"))
    if not panels:
        raise FatError(f"no run records {GRAD_NORM_PREFIX}<group> columns")
    positive = np.concatenate(
        [
            frame[GRAD_NORM_PREFIX + g].to_numpy(dtype=float)
            for run, frame, _ in panels
            for g in run.grad_groups(frame)
        ]
    )
    positive = positive[np.isfinite(positive) & (positive > 0)]
    floor = float(positive.min()) / 10 if len(positive) else 1e-12
    groups = list(dict.fromkeys(g for run, frame, _ in panels for g in run.grad_groups(frame)))
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    colours = {g: cmap(i % cmap.N) for i, g in enumerate(groups)}

    columns = 1 if len(panels) <= 3 else 2 if len(panels) <= 8 else 3
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(WIDTH_IN, 1.5 + 3.0 * rows),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    any_zero = False
    for ax, (run, frame, source) in zip(axes.flat, panels, strict=False):
        epoch = frame["epoch"].to_numpy(dtype=float)
        panel_zero = False
        for group in run.grad_groups(frame):
            norm = frame[GRAD_NORM_PREFIX + group].to_numpy(dtype=float)
            zero = norm <= 0  # NaN (not logged) stays a gap in the line
            ax.plot(epoch, np.where(zero, floor, norm), color=colours[group])
            if zero.any():
                panel_zero = True
                ax.plot(epoch[zero], np.full(zero.sum(), floor), "v", color=colours[group])
        if panel_zero:
            any_zero = True
            ax.axhline(floor, color="gray", linestyle=":")
        ax.set_yscale("log")
        ax.set_title(literal(f"{run.name} ({source})"), fontsize=10)
        ax.grid(alpha=0.3, which="both")
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    fig.supxlabel("epoch")
    fig.supylabel("grad L2 norm")
    handles = [plt.Line2D([], [], color=colours[g], label=literal(g)) for g in groups]
    if any_zero:
        handles.append(
            plt.Line2D(
                [], [], color="gray", linestyle=":", marker="v", label="zero (drawn at floor)"
            )
        )
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    fig.suptitle(literal(title))
    return fig


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
    ax.set_yticks(y, labels=[literal(c) for c in values.index], fontsize=8)
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
    ax.set_title(literal(title))
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    return BarChart(save_png(fig, path, DPI), n, tuple(str(c) for c in values.index))


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
    ax.set_yticks(y, labels=[literal(c) for c in classes], fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("lwlrap")
    ax.set_ylabel("class")
    ax.set_title(literal(title))
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    return BarChart(save_png(fig, path, DPI), n, tuple(str(c) for c in classes))


def plot_clip_prediction(
    features: np.ndarray,
    cfg: LogMelConfig,
    vocabulary: Sequence[str],
    scores: np.ndarray,
    true_labels: Sequence[str] | None,
    path: Path,
    frame_probs: np.ndarray | None = None,
    top_k: int = 5,
    *,
    title: str | None = None,
) -> Path:
    """`clip_prediction_figure` of one clip, written to `path`; the title defaults to the file
    name, followed by the true labels when there are any."""
    if title is None:
        title = Path(path).stem
        if true_labels:
            title += f"\ntrue labels: {', '.join(true_labels)}"
    figure = clip_prediction_figure(
        features, cfg, vocabulary, scores, true_labels, frame_probs, top_k, title=title
    )
    return save_png(figure, path, DPI)


def clip_prediction_figure(
    features: np.ndarray,
    cfg: LogMelConfig,
    vocabulary: Sequence[str],
    scores: np.ndarray,
    true_labels: Sequence[str] | None = None,
    frame_probs: np.ndarray | None = None,
    top_k: int = 5,
    *,
    title: str = "",
) -> Figure:
    """One clip: its log-mel (n_mels, T) on top; with `frame_probs` (T', n_classes), T' frames
    spread evenly over the clip, a time-aligned heat-map of the top-k classes' frame
    probabilities under it; then the top-k clip scores as bars. Given `true_labels`, true
    labels are green and those outside the top-k appended with their rank; without (None or
    empty: a clip tagged with no ground truth) every bar has one colour and no legend. Size:
    1000 px wide, (3.5 + [1 + 0.25 k] + 1 + 0.25 * bars) * 100 px high, the bracket only with
    frame_probs."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] != cfg.n_mels or features.shape[1] == 0:
        raise FatError(f"features must be (n_mels={cfg.n_mels}, frames), got {features.shape}")
    vocabulary = list(vocabulary)
    true_labels = list(true_labels or [])
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
    spec_ax.set_title(literal(title), fontsize=10)
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
        heat_ax.set_yticks(
            np.arange(k) + 0.5, labels=[literal(vocabulary[c]) for c in top], fontsize=8
        )
        mark_truth(heat_ax, top)
        heat_ax.set_xlabel("time (s)")
        heat_ax.set_title(f"frame-level probability, top {k} classes", fontsize=9)
        fig.colorbar(heat, cax=fig.add_subplot(grid[1, 1]), label="probability")

    bar_ax = fig.add_subplot(grid[-1, 0])
    y = np.arange(len(bars))
    if truth:
        colours = ["tab:green" if c in truth else "tab:gray" for c in bars]
    else:  # grey would read as "not a label" when nothing is known about the labels
        colours = ["tab:blue"] * len(bars)
    bar_ax.barh(y, scores[bars], color=colours, height=0.7)
    labels = [vocabulary[c] if c in top else f"{vocabulary[c]} (rank {rank[c]})" for c in bars]
    bar_ax.set_yticks(y, labels=[literal(label) for label in labels], fontsize=8)
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
    if truth:
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
    return fig


def zoomed_ticks(values: Sequence[float], min_span: float = 0.01, nbins: int = 8) -> np.ndarray:
    """Ticks for an axis that shows just the range of the finite `values` (widened to
    `min_span`, so noise in the fourth decimal is not blown up), the first tick at or below
    the smallest value and the last at or above the largest. An axis from 0 would squeeze
    differences of a hundredth between configurations into a few pixels."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        raise FatError("no finite value to draw")
    lo, hi = float(finite.min()), float(finite.max())
    # A little room either side keeps markers on the first or last tick from being clipped.
    margin = max(0.03 * (hi - lo), (min_span - (hi - lo)) / 2)
    ticks = MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo - margin, hi + margin)
    first = ticks[ticks <= lo - margin].max()
    last = ticks[ticks >= hi + margin].min()
    return ticks[(ticks >= first) & (ticks <= last)]


def _group_label(config: str, seeds: int, mean: float, std: float) -> str:
    spread = f"+- {std:.3f}" if seeds > 1 else "(1 seed)"
    return f"{literal(config)}\n{mean:.3f} {spread}"


def plot_group_comparison(summary: pd.DataFrame, groups: dict, metric: str, path: Path) -> Path:
    """Mean final `metric` per configuration (diamond, +-1 std whiskers, values in the label)
    with each seed as a dot, on an x axis zoomed to the data: its start is the first tick
    label and is named in the axis label. A dotted line marks the first configuration's mean,
    the one the others are compared with. Size: 1000 px wide, max(300, 160 + 45 * configs)
    px high."""
    n = len(summary)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, max(3.0, 1.6 + 0.45 * n)), layout="constrained")
    y = np.arange(n)[::-1]
    mean = summary["mean"].to_numpy(dtype=float)
    std = summary["std"].fillna(0).to_numpy(dtype=float)
    seeds = [[r.final(metric) for r in groups[name]] for name in summary["config"]]
    for yi, values in zip(y, seeds, strict=True):
        ax.plot(values, [yi] * len(values), "o", color="#6baed6", markersize=5)
    ax.errorbar(mean, y, xerr=std, fmt="D", color="#08519c", markersize=7, capsize=5)
    ax.axvline(
        mean[0], color="gray", linestyle=":", label=literal(f"mean of {summary['config'].iloc[0]}")
    )
    labels = map(_group_label, summary["config"], summary["seeds"], mean, std)
    ax.set_yticks(y, list(labels), fontsize=8)
    ax.set_ylim(-0.6, n - 0.4)
    ticks = zoomed_ticks([*(mean - std), *(mean + std), *(v for vs in seeds for v in vs)])
    ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax.set_xlim(ticks[0], ticks[-1])
    start = f"; axis starts at {ticks[0]:g}, not 0" if ticks[0] > 0 else ""
    name = literal(_METRIC_LABELS.get(metric, metric))
    ax.set_xlabel(f"final {name} (diamond: mean +- std; dots: seeds{start})")
    ax.set_title(literal(f"{metric} by configuration, same budget"))
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=8)
    return save_png(fig, path, DPI)

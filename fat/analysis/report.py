"""`write_report`: every figure the runs' files support, and an index page that holds them."""

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fat.analysis.figures import (
    plot_grad_norms,
    plot_group_comparison,
    plot_loss_curves,
    plot_lr_schedule,
    plot_metric_curves,
    plot_per_class,
    plot_per_class_split,
)
from fat.analysis.pages import (
    Block,
    Figure,
    Heading,
    Image,
    Items,
    Paragraph,
    Table,
    to_html,
    to_markdown,
)
from fat.analysis.plotting import file_slug
from fat.core.errors import FatError
from fat.core.files import atomic_write
from fat.runs.history import RunHistory, column_of, has_values, load_run


def _unique_slugs(names: Sequence[str]) -> list[str]:
    slugs, seen = [], set()
    for name in names:
        slug, i = file_slug(name), 2
        while slug in seen:
            slug, i = f"{file_slug(name)}_{i}", i + 1
        seen.add(slug)
        slugs.append(slug)
    return slugs


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _runs_table(runs: list[RunHistory]) -> Table:
    has_swa = any(has_values(r.metrics, "swa_val_lwlrap") for r in runs)
    has_eval = any(r.evals for r in runs)
    header = ["run", "arch", "epochs", "best val lwlrap", "best epoch", "final val lwlrap"]
    header += ["final SWA lwlrap"] * has_swa + ["eval lwlrap"] * has_eval
    rows = []
    for run in runs:
        best = run.best
        row = [
            run.name,
            run.arch,
            str(run.epochs),
            _fmt(best[1]) if best else "n/a",
            str(best[0]) if best else "n/a",
            _fmt(run.final_lwlrap),
        ]
        if has_swa:
            swa = column_of(run.metrics, "swa_val_lwlrap")
            row.append(_fmt(float(swa.iloc[-1])) if swa is not None and len(swa) else "n/a")
        if has_eval:
            row.append(
                ", ".join(
                    f"{split} {_fmt(_float(e.summary.get('lwlrap')))}"
                    for split, e in run.evals.items()
                )
                or "n/a"
            )
        rows.append(row)
    return Table(header, rows)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _run_figures(run: RunHistory, slug: str, out: Path) -> list[Figure]:
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
            Figure(
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
                Figure(
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
            out / f"{slug}_eval_{file_slug(split)}_per_class.png",
            f"{run.name}: {split} lwlrap per class (lwlrap {_fmt(overall)})",
            weights=weights,
        )
        figures.append(
            Figure(
                f"{run.name}: evaluation on {split}",
                chart.path,
                f"Per-class lwlrap from `fat evaluate` on {split} ({chart.n_bars} classes with "
                "labels there), best at the top.",
            )
        )
        if has_values(table, "lwlrap_curated") and has_values(table, "lwlrap_noisy"):
            chart = plot_per_class_split(
                table["lwlrap_curated"],
                table["lwlrap_noisy"],
                out / f"{slug}_eval_{file_slug(split)}_curated_vs_noisy.png",
                f"{run.name}: {split}, curated vs noisy lwlrap per class",
            )
            figures.append(
                Figure(
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


def group_summary(groups: dict[str, list[RunHistory]], metric: str) -> pd.DataFrame:
    """Per configuration: seeds, mean, std (ddof 1), min and max of the final `metric`."""
    rows = []
    for name, runs in groups.items():
        values = np.array([r.final(metric) for r in runs])
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


def _comparison_section(histories: list[RunHistory], out: Path) -> list[Block]:
    """A table and a chart comparing configurations across seeds, when runs repeat seeds."""
    groups = seed_groups(histories)
    if not any(len(g) > 1 for g in groups.values()):
        return []
    metric = (
        "val_lwlrap_curated"
        if all(not math.isnan(r.final("val_lwlrap_curated")) for r in histories)
        else "val_lwlrap"
    )
    summary = group_summary(groups, metric)
    summary.to_csv(out / "comparison.csv", index=False)
    rows = [
        [row.config, str(row.seeds), *(_fmt(v) for v in (row.mean, row.std, row.min, row.max))]
        for row in summary.itertuples()
    ]
    chart = plot_group_comparison(summary, groups, metric, out / "comparison.png")
    return [
        Heading(2, "Comparison across seeds"),
        Paragraph(
            f"Final-epoch `{metric}` per configuration (mean +- std over seeds; also "
            "comparison.csv).",
            code_spans=True,
        ),
        Table(["configuration", "seeds", "mean", "std", "min", "max"], rows),
        Image("configurations compared", chart),
    ]


def write_report(
    runs: Sequence[Path], out: Path, clip_figures: Sequence[Path] | None = None
) -> Path:
    """Load `runs`, write into `out` every figure their files support (lwlrap and loss curves,
    learning rate, gradient norms, per-class lwlrap at each run's best epoch, curated vs noisy,
    evaluation results), `out/index.md` with a table of runs and every figure (plus
    `clip_figures`, already written by the caller) under a heading with a caption, and the same
    page as a self-contained `out/index.html`. Returns the path of index.md."""
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

    curves: list[Figure] = []
    if any(has_values(r.metrics, "val_lwlrap") for r in histories):
        curves.append(
            Figure(
                "Validation lwlrap",
                plot_metric_curves(histories, out / "lwlrap.png"),
                "Validation lwlrap per epoch (solid); where recorded, on curated (dash-dot) and "
                "noisy (dotted) clips and for the SWA model (dashed). A star marks each run's "
                "best epoch.",
            )
        )
    if any(
        has_values(r.metrics, "train_loss") or has_values(r.metrics, "val_loss") for r in histories
    ):
        curves.append(
            Figure(
                "Loss",
                plot_loss_curves(histories, out / "loss.png"),
                "Training (solid) and validation (dashed) loss per epoch. Validation loss "
                "rising while training loss falls is overfitting.",
            )
        )
    if any(has_values(r.steps, "lr") or has_values(r.metrics, "lr") for r in histories):
        curves.append(
            Figure(
                "Learning rate",
                plot_lr_schedule(histories, out / "lr.png"),
                "The learning rate the optimizer used, against (fractional) epoch.",
            )
        )
    if any(r.grad_groups(r.steps) or r.grad_groups(r.metrics) for r in histories):
        curves.append(
            Figure(
                "Gradient norms",
                plot_grad_norms(histories, out / "grad_norms.png"),
                "L2 norm of the gradient of each layer group (log scale). Zeros are drawn on "
                "the dotted floor line: a group stuck there has stopped learning.",
            )
        )

    sections: list[tuple[str, list[Figure]]] = [("Training curves", curves)]
    for run, slug in zip(histories, _unique_slugs([r.name for r in histories]), strict=True):
        sections.append((f"Run {run.name}", _run_figures(run, slug, out)))
    clips = []
    for p in clip_figures or []:
        if not Path(p).is_file():
            raise FatError(f"{p}: clip figure does not exist")
        clips.append(
            Figure(
                Path(p).stem,
                Path(p),
                "Log-mel spectrogram, the clip's top predictions (true labels in green) and, "
                "for models with frame outputs, where in time each class is detected.",
            )
        )
    sections.append(("Clip predictions", clips))

    blocks: list[Block] = [
        Heading(1, "Training report"),
        Paragraph(f"Runs: {names}."),
        *_comparison_section(histories, out),
        Heading(2, "Runs"),
        _runs_table(histories),
        Items([f"{r.name}: {r.path}" for r in histories]),
    ]
    for heading, figures in sections:
        if figures:
            blocks += [Heading(2, heading), *figures]
    index = out / "index.md"
    with atomic_write(index) as f:
        f.write(to_markdown(blocks, out))
    with atomic_write(out / "index.html") as f:
        f.write(to_html(blocks, f"Training report: {names}"))
    return index

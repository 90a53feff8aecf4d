"""Text in the run and clip figures, as the Agg renderer lays it out: maths from matplotlib's
own tick formatters, names drawn as written, and no talk of true labels when there are none."""

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from fat.analysis.figures import (
    clip_prediction_figure,
    grad_norms_figure,
    plot_clip_prediction,
    plot_grad_norms,
    plot_group_comparison,
    plot_loss_curves,
    plot_lr_schedule,
    plot_metric_curves,
    plot_per_class,
    plot_per_class_split,
)
from fat.analysis.plotting import plot_logmel, plot_split_overview
from fat.core.features import LogMelConfig
from fat.runs.history import RunHistory
from fat.runs.logs import grad_norm_column

TWO_DOLLARS = "a $b$ c"
BAD_MATHS = "a $\\bad$ c"  # as mathtext, an unknown symbol: savefig would raise
CFG = LogMelConfig(n_mels=16)


def history(name: str = "run", groups: tuple[str, ...] = ("block1", "head")) -> RunHistory:
    """A run with five epochs and grad norms between 0.06 and 0.8 in steps.csv: less than a
    decade and a bit, so the log axis labels minor ticks too."""
    epochs = np.arange(1, 6)
    metrics = pd.DataFrame(
        {
            "epoch": epochs,
            "lr": 1e-3 / epochs,
            "train_loss": 0.5 / epochs,
            "val_loss": 0.6 / epochs,
            "val_lwlrap": 0.5 + 0.05 * epochs,
        }
    )
    n = 20
    steps = pd.DataFrame({"step": np.arange(n), "epoch": np.linspace(0.25, 5, n), "lr": 1e-3})
    for i, group in enumerate(groups):
        steps[grad_norm_column(group)] = np.linspace(0.06, 0.4, n) * (1 + i)
    return RunHistory(name, Path(name), {}, {}, metrics, steps)


def drawn(text: Text) -> tuple[str, bool]:
    """(string, whether it is mathtext) as the renderer lays `text` out."""
    # Text.draw goes through this hook; re-deriving its rules here could drift from matplotlib.
    return text._preprocess_math(text.get_text())


def shown_texts(fig: Figure) -> set[tuple[str, bool]]:
    fig.canvas.draw()
    return {drawn(t) for t in fig.findobj(Text) if t.get_visible() and t.get_text()}


def legend_texts(fig: Figure) -> list[str]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
    return [t.get_text() for legend in legends if legend is not None for t in legend.get_texts()]


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_importing_the_figures_leaves_mathtext_on():
    # A global switch would also turn off the maths of every tick formatter.
    assert matplotlib.rcParams["text.parse_math"] is True


def test_grad_norm_log_axis_tick_labels_are_drawn_as_maths(tmp_path):
    fig = grad_norms_figure([history()])
    fig.canvas.draw()
    labels = [
        t
        for ax in fig.axes
        for t in ax.yaxis.get_ticklabels(which="both")
        if t.get_visible() and t.get_text()
    ]
    plt.close(fig)
    maths = [t for t in labels if "\\mathdefault" in t.get_text()]
    assert maths, [t.get_text() for t in labels]  # the log formatter writes mathtext
    for label in labels:
        text, is_maths = drawn(label)
        assert is_maths or "$" not in text, f"drawn literally: {text}"
    # The documented size stands: 1000 px wide, (1.5 + 3 * 1 row) * 100 px high.
    assert png_size(plot_grad_norms([history()], tmp_path / "grad.png")) == (1000, 450)


def test_names_with_two_dollars_are_drawn_as_written():
    fig = grad_norms_figure([history(TWO_DOLLARS, groups=("x $y$",))], title="t $z$")
    shown = shown_texts(fig)
    plt.close(fig)
    assert {
        (f"{TWO_DOLLARS} (every few steps)", False),
        ("x $y$", False),
        ("t $z$", False),
    } <= shown, shown

    vocabulary = [TWO_DOLLARS, "plain", "d$e", "f$"]
    scores = np.array([0.2, 0.9, 0.5, 0.1])
    fig = clip_prediction_figure(
        np.zeros((16, 40)), CFG, vocabulary, scores, [TWO_DOLLARS], top_k=2, title="$1 $2"
    )
    shown = shown_texts(fig)
    plt.close(fig)
    assert {
        ("plain", False),
        ("d$e", False),
        (f"{TWO_DOLLARS} (rank 3)", False),
        ("$1 $2", False),
    } <= shown, shown


def test_every_figure_saves_names_that_are_bad_mathtext(tmp_path):
    run = history(BAD_MATHS, groups=(BAD_MATHS,))
    values = pd.Series([0.9, 0.4], index=[BAD_MATHS, "ok"])
    summary = pd.DataFrame({"config": [BAD_MATHS], "seeds": [1], "mean": [0.75], "std": [np.nan]})
    written = [
        plot_grad_norms([run], tmp_path / "grad.png", title=BAD_MATHS),
        plot_metric_curves([run], tmp_path / "m.png", metrics=(BAD_MATHS, "val_lwlrap")),
        plot_loss_curves([run], tmp_path / "loss.png", title=BAD_MATHS),
        plot_lr_schedule([run], tmp_path / "lr.png", title=BAD_MATHS),
        plot_per_class(values, tmp_path / "pc.png", BAD_MATHS).path,
        plot_per_class_split(values, values, tmp_path / "split.png", BAD_MATHS).path,
        plot_group_comparison(summary, {BAD_MATHS: [run]}, "val_lwlrap", tmp_path / "cmp.png"),
        plot_clip_prediction(
            np.zeros((16, 40)),
            CFG,
            [BAD_MATHS, "ok"],
            np.array([0.7, 0.3]),
            [BAD_MATHS],
            tmp_path / "clip.png",
            np.full((10, 2), 0.5),
        ),
        plot_logmel(np.zeros((16, 40)), CFG, BAD_MATHS, tmp_path / "logmel.png"),
        plot_split_overview({BAD_MATHS: 3}, np.array([1.0, 2.0]), BAD_MATHS, tmp_path / "s.png"),
    ]
    assert all(Path(p).stat().st_size > 0 for p in written)


def bar_colours(fig: Figure) -> set[tuple[float, ...]]:
    return {tuple(bar.get_facecolor()) for ax in fig.axes for bar in ax.patches}


@pytest.mark.parametrize("truth", [[], None])
def test_clip_prediction_without_truth_colours_by_score_only(truth):
    vocabulary = ["dog", "cat", "bird", "car"]
    fig = clip_prediction_figure(
        np.zeros((16, 40)), CFG, vocabulary, np.array([0.9, 0.6, 0.3, 0.1]), truth, title="x.wav"
    )
    shown = {text for text, _ in shown_texts(fig)}
    legends, colours = legend_texts(fig), bar_colours(fig)
    plt.close(fig)
    assert not any("label" in text for text in legends), legends
    assert not any("true label" in text or "not a label" in text for text in shown), shown
    assert len(colours) == 1  # one colour for every bar: nothing is known to be right or wrong


def test_clip_prediction_with_truth_marks_true_labels():
    vocabulary = ["dog", "cat", "bird", "car"]
    fig = clip_prediction_figure(
        np.zeros((16, 40)), CFG, vocabulary, np.array([0.9, 0.6, 0.3, 0.1]), ["cat"], top_k=2
    )
    legends, colours = legend_texts(fig), bar_colours(fig)
    plt.close(fig)
    assert legends == ["true label", "not a label"]
    assert len(colours) == 2

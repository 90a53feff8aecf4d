"""Drawing shared by every figure (`literal`, `save_png`, `draw_logmel`) and the figures of
store contents: a clip's log-mel, a split's label counts and durations. Every plot_ function
writes one PNG."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fat.core.features import LogMelConfig  # noqa: E402
from fat.core.melscale import mel_band_edges_hz  # noqa: E402


def file_slug(text: str) -> str:
    """`text` as a safe part of a file name: letters, digits, "_", "." and "-" only, no leading
    dot, never empty, so no name from a run or a store can point outside a folder."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "unnamed"


def literal(text: object) -> str:
    """`text` as matplotlib draws it verbatim: every "$" escaped, so a run, class or split name
    holding two of them never starts mathtext. Apply to every name that enters a figure; the
    tick formatters' own mathtext (log axes) stays on."""
    return str(text).replace("$", r"\$")


def save_png(fig, path: Path, dpi: int) -> Path:
    """Write `fig` to `path` (creating its folder) and free it. Never bbox_inches="tight": it
    would make the pixel size depend on the labels, and callers document their sizes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def draw_logmel(ax, features: np.ndarray, cfg: LogMelConfig):
    """A log-mel (n_mels, n_frames) on `ax`: time in seconds, mel bands labelled in Hz.
    Returns the image, for a colour bar."""
    seconds = features.shape[1] / cfg.frames_per_second
    image = ax.imshow(
        features,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, seconds, 0, cfg.n_mels),
        interpolation="nearest",
    )
    centres = mel_band_edges_hz(cfg)[1:-1]
    ticks = np.unique(np.linspace(0, cfg.n_mels - 1, min(6, cfg.n_mels)).astype(int))
    ax.set_yticks(ticks + 0.5, labels=[f"{centres[t]:.0f}" for t in ticks])
    ax.set_ylabel("frequency (Hz, mel scale)")
    return image


def plot_logmel(features: np.ndarray, cfg: LogMelConfig, title: str, path: Path) -> Path:
    """A log-mel (n_mels, n_frames) with time in seconds and mel-band frequencies in Hz.
    Predictions over a log-mel are `fat.analysis.figures.plot_clip_prediction`."""
    fig, ax = plt.subplots(figsize=(10, 4))
    image = draw_logmel(ax, np.asarray(features, dtype=np.float32), cfg)
    ax.set_title(literal(title), fontsize=10)
    ax.set_xlabel("time (s)")
    fig.colorbar(image, ax=ax, label="dB", pad=0.01)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


def plot_split_overview(
    label_counts: dict[str, int], durations: np.ndarray, title: str, path: Path
) -> Path:
    """Clips per label (sorted bar chart) and the duration histogram of one split."""
    names = sorted(label_counts, key=lambda k: -label_counts[k])
    height = max(4.0, 0.16 * len(names) + 1.5)
    fig, (bars, hist) = plt.subplots(
        1, 2, figsize=(13, height), gridspec_kw={"width_ratios": [3, 2]}
    )
    bars.barh(range(len(names)), [label_counts[n] for n in names], color="tab:blue")
    bars.set_yticks(range(len(names)))
    bars.set_yticklabels([literal(n) for n in names], fontsize=7 if len(names) > 30 else 9)
    bars.invert_yaxis()
    bars.set_xlabel("clips")
    bars.set_title("clips per label")
    hist.hist(durations, bins=min(40, max(5, len(durations) // 5)), color="tab:orange")
    hist.set_xlabel("duration (s)")
    hist.set_ylabel("clips")
    hist.set_title(f"durations: median {np.median(durations) if len(durations) else 0:.1f} s")
    fig.suptitle(literal(title))
    fig.tight_layout()
    return save_png(fig, path, dpi=110)

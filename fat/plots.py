"""Figures a person would rather look at than read. Every function writes one PNG."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fat.config import LogMelConfig  # noqa: E402
from fat.melscale import mel_band_edges_hz  # noqa: E402


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


def plot_logmel(
    features: np.ndarray,
    cfg: LogMelConfig,
    title: str,
    path: Path,
    overlay: np.ndarray | None = None,
    overlay_labels: list[str] | None = None,
) -> Path:
    """A log-mel (n_mels, n_frames) with time in seconds and mel-band frequencies in Hz;
    `overlay` (n_rows, n_frames) adds a heat-map panel below (e.g. frame-level predictions)."""
    features = np.asarray(features, dtype=np.float32)
    seconds = features.shape[1] / cfg.frames_per_second
    rows = 2 if overlay is not None else 1
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(10, 4 + 2.5 * (rows - 1)),
        squeeze=False,
        sharex=True,
        gridspec_kw={"height_ratios": [3] + [2] * (rows - 1)},
    )
    ax = axes[0, 0]
    image = draw_logmel(ax, features, cfg)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="dB", pad=0.01)
    if overlay is not None:
        ax2 = axes[1, 0]
        heat = ax2.imshow(
            overlay,
            origin="lower",
            aspect="auto",
            cmap="viridis",
            vmin=0,
            vmax=1,
            extent=(0, seconds, 0, overlay.shape[0]),
            interpolation="nearest",
        )
        ax2.set_yticks(np.arange(overlay.shape[0]) + 0.5)
        ax2.set_yticklabels(overlay_labels or [], fontsize=7)
        ax2.set_ylabel("class")
        fig.colorbar(heat, ax=ax2, label="probability", pad=0.01)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


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
    bars.set_yticklabels(names, fontsize=7 if len(names) > 30 else 9)
    bars.invert_yaxis()
    bars.set_xlabel("clips")
    bars.set_title("clips per label")
    hist.hist(durations, bins=min(40, max(5, len(durations) // 5)), color="tab:orange")
    hist.set_xlabel("duration (s)")
    hist.set_ylabel("clips")
    hist.set_title(f"durations: median {np.median(durations) if len(durations) else 0:.1f} s")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

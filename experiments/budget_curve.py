"""Validation and test lwlrap against training steps, from experiments/budget.sh's runs: a
table (markdown) and a figure.

    python experiments/budget_curve.py OUT [--figure docs/budget_curve.png]

Each run is scored by its last checkpoint (its one-cycle schedule ends there), validation on
its 20% hold-out, test on the test split."""

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fat.core.metrics import lwlrap  # noqa: E402
from fat.predict.ensemble import Source, predict_ensemble  # noqa: E402


def budget_runs(out: Path) -> list[tuple[int, Path]]:
    """(steps, run) of every finished run, fewest steps first."""
    done = [(int(p.name.split("-")[1]), out / p.name) for p in (out / "cpu").glob("steps-*")]
    return sorted((s, run) for s, run in done if not run.name.endswith(".tmp"))


def last_val_lwlrap(run: Path) -> float:
    with open(run / "metrics.csv", newline="") as f:
        return float(list(csv.DictReader(f))[-1]["val_lwlrap"])


def train_minutes(run: Path) -> float:
    """Training minutes of all epochs (one thread), from metrics.csv: a resumed run counts whole."""
    with open(run / "metrics.csv", newline="") as f:
        return sum(float(row["epoch_seconds"]) for row in csv.DictReader(f)) / 60


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for steps, run in budget_runs(args.out):
        pred = predict_ensemble([Source.parse(str(run), "last")], "test")
        rows.append(
            (steps, last_val_lwlrap(run), lwlrap(pred.labels, pred.probs), train_minutes(run))
        )
    print("| steps (batch 32) | validation lwlrap | test lwlrap | training minutes (1 thread) |")
    print("|---:|---:|---:|---:|")
    for steps, val, test, minutes in rows:
        print(f"| {steps:,} | {val:.3f} | {test:.3f} | {minutes:.1f} |")
    figure = args.figure or args.out / "budget_curve.png"
    fig, ax = plt.subplots(figsize=(6, 3.6))
    steps = [r[0] for r in rows]
    ax.plot(steps, [r[1] for r in rows], "o-", label="validation (20% of curated)")
    ax.plot(steps, [r[2] for r in rows], "s-", label="test split")
    ax.set_xscale("log")
    ax.set_xticks(steps, [f"{s:,}" for s in steps])
    ax.minorticks_off()
    ax.set_xlabel("training steps of batch 32 (log scale)")
    ax.set_ylabel("lwlrap")
    ax.set_title("lwlrap by budget: default recipe, CNN width 0.25, hard preset", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    print(f"\nfigure: {figure}")


if __name__ == "__main__":
    main()

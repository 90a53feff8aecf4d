"""The table of experiments/techniques.sh: test lwlrap of every row and seed, paired against
the baseline of the same seed, and whether the gain is outside the seed spread.

    python experiments/techniques_table.py OUT [--split test]

A difference counts as outside the seed spread when it has the same sign for every seed and
its mean is larger than the standard deviation over seeds of the baseline and of the row."""

import argparse
import json
from pathlib import Path

import numpy as np

from fat.core.metrics import lwlrap
from fat.predict.ensemble import Source, predict_ensemble

SEEDS = (0, 1, 2)
# row name, what it changes, which checkpoint(s) of the run are scored
ROWS = [
    ("baseline", "`default` recipe: mixup 0.4, SpecAugment 2+2, one-cycle to 1e-3", "best"),
    ("mixer-concat", "`--mixer concat` (SigmoidConcat-like) instead of mixup", "best"),
    ("mixer-specmix", "`--mixer specmix` instead of mixup", "best"),
    ("balanced", "`--sampler balanced`", "best"),
    ("ema", "`--ema 0.99`, the average scored", "ema"),
    (
        "restarts",
        "`--schedule cosine-restarts --cycle-epochs 2`, 4 snapshots averaged",
        "snapshots",
    ),
    ("skip-attention", "`--arch skip_attention` (aux heads 0.4/0.2/0.1)", "best"),
    ("noisy-plain", "+ noisy clips, by size (83% of each batch)", "best"),
    ("noisy-half", "+ noisy clips, `--split-weights curated=0.5,noisy=0.5`", "best"),
    ("noisy-lsoft", "noisy-half + `--noisy-loss lsoft --lsoft-beta 0.7`", "best"),
    ("noisy-head", "noisy-half + `--noisy-head`", "best"),
    (
        "noisy-selected",
        "noisy-half, clips kept by `fat select-noisy BASELINE --min-lwlrap 0.5`",
        "best",
    ),
    (
        "noisy-pseudo",
        "noisy-half, targets `fat pseudo-label BASELINE --temperature 0.5 --blend 0.25`",
        "best",
    ),
    ("staged", "4 epochs on noisy alone, then 4 on curated from its weights (`--init`)", "best"),
]


def cpu_minutes(out: Path, name: str, seed: int) -> float:
    parts = [f"{name}-s{seed}"] + ([f"pretrain-noisy-s{seed}"] if name == "staged" else [])
    total = 0.0
    for tag in parts:
        user, system = (out / "cpu" / tag).read_text().split()
        total += float(user) + float(system)
    return total / 60


def test_lwlrap(spec: str, kind: str, split: str) -> float:
    pred = predict_ensemble([Source.parse(spec, kind)], split)
    return lwlrap(pred.labels, pred.probs)


def spread_note(deltas: np.ndarray, spread: float) -> str:
    if (deltas > 0).all() and deltas.mean() > spread:
        return "**gain, outside the spread**"
    if (deltas < 0).all() and -deltas.mean() > spread:
        return "loss, outside the spread"
    return "within the spread"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    out = args.out
    scores: dict[str, np.ndarray] = {}
    lines = [
        "| row | change against the baseline | test lwlrap, seeds 0 / 1 / 2 | mean +- std "
        "| paired vs baseline (per seed) | | CPU-min per run |",
        "|---|---|---|---|---|---|---:|",
    ]
    for name, what, kind in ROWS:
        if not all((out / "cpu" / f"{name}-s{s}").exists() for s in SEEDS):
            continue
        values = np.array([test_lwlrap(str(out / f"{name}-s{s}"), kind, args.split) for s in SEEDS])
        scores[name] = values
        cpu = np.mean([cpu_minutes(out, name, s) for s in SEEDS])
        paired, note = "", ""
        if name != "baseline":
            deltas = values - scores["baseline"]
            paired = f"{deltas.mean():+.3f} (" + " / ".join(f"{d:+.3f}" for d in deltas) + ")"
            spread = max(scores["baseline"].std(ddof=1), values.std(ddof=1))
            note = spread_note(deltas, spread)
        per_seed = " / ".join(f"{v:.3f}" for v in values)
        lines.append(
            f"| {name} | {what} | {per_seed} | {values.mean():.3f} +- {values.std(ddof=1):.3f} "
            f"| {paired} | {note} | {cpu:.1f} |"
        )
    print("\n".join(lines))
    cv_rows(out, args.split, scores)


def cv_rows(out: Path, split: str, scores: dict[str, np.ndarray]) -> None:
    """5-fold CV of the baseline per seed: OOF lwlrap, each fold model on the test split, and
    the fold mean against its members and against the single baseline run."""
    if not all((out / "cpu" / f"cv-s{s}").exists() for s in SEEDS):
        return
    rows = []
    for s in SEEDS:
        cv = out / f"cv-s{s}"
        oof = json.loads((cv / "oof_summary.json").read_text())["lwlrap"]
        folds = sorted(p for p in cv.glob("fold*") if (p / "config.json").exists())
        members = [test_lwlrap(str(f), "best", split) for f in folds]
        mean = test_lwlrap(str(cv), "best", split)
        rows.append((oof, float(np.mean(members)), max(members), mean))
    table = np.array(rows)
    print(
        "\n| 5-fold CV of the baseline | seeds 0 / 1 / 2 | mean |\n|---|---|---:|\n"
        + "\n".join(
            f"| {label} | "
            + " / ".join(f"{v:.3f}" for v in table[:, i])
            + f" | {table[:, i].mean():.3f} |"
            for i, label in enumerate(
                [
                    "out-of-fold lwlrap",
                    "test, fold models alone (mean)",
                    "test, best fold model",
                    "**test, fold mean**",
                ]
            )
        )
    )
    gain_members = " / ".join(f"{d:+.3f}" for d in table[:, 3] - table[:, 1])
    print(f"\nfold mean - its members' mean, per seed: {gain_members}")
    if "baseline" in scores:
        gain_single = table[:, 3] - scores["baseline"]
        print(
            "fold mean - the single baseline run (all curated, same steps per model), per seed: "
            + " / ".join(f"{d:+.3f}" for d in gain_single)
        )


if __name__ == "__main__":
    main()

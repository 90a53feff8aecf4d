#!/usr/bin/env bash
# Whether `fat train`'s defaults train well: the old defaults (lr 3e-4 constant, no mixup)
# against the default recipe's (one-cycle LR, mixup, SpecAugment masks) on the hard preset,
# same budget (epochs x batch), curated only, scored on the test split; and the clip-mean
# logistic regression every recipe must beat.
#   bash experiments/defaults.sh STORE OUT [EPOCHS]
set -euo pipefail
STORE=${1:?store of the hard preset (fat demo-data OUT --preset hard, then featurize)}
OUT=${2:?output folder}
EPOCHS=${3:-40}
FAT=${FAT:-.venv/bin/fat}
COMMON=(--store "$STORE" --width 0.25 --epochs "$EPOCHS" --batch-size 32
        --train-splits curated --log-every 10 --quiet)
OLD=(--lr 3e-4 --schedule constant --mixup 0 --time-masks 0 --freq-masks 0)
NEW=(--recipe default)
run() { local name=$1; shift
        if [ ! -f "$OUT/$name/test.txt" ]; then
          rm -rf "$OUT/$name"
          "$FAT" train "${COMMON[@]}" --out "$OUT/$name" "$@"
          "$FAT" evaluate "$OUT/$name" --split test --quiet > "$OUT/$name/test.txt"
        fi
        echo "$name: $(head -1 "$OUT/$name/test.txt")"; }
for seed in 0 1; do
  run "old-defaults-s$seed" "${OLD[@]}" --seed "$seed"
  run "default-recipe-s$seed" "${NEW[@]}" --seed "$seed"
done
.venv/bin/python experiments/linear_reference.py "$STORE" --split test

#!/usr/bin/env bash
# Ways to use train_noisy, compared on the demo data with the same budget
# (epochs x steps x batch) and three seeds, by curated-validation lwlrap. Run after `make demo`.
#   bash experiments/noisy.sh [STORE] [OUT]
set -euo pipefail
STORE=${1:-demo-out/features.zarr}
OUT=${2:-demo-out/noisy-study}
FAT=${FAT:-.venv/bin/fat}
EPOCHS=12
COMMON=(--store "$STORE" --arch cnn --width 0.25 --batch-size 16 --steps-per-epoch 15
        --lr 3e-3 --schedule onecycle --mixup 0.4 --log-every 15 --quiet
        --time-masks 0 --freq-masks 0)
mkdir -p "$OUT"
for seed in 0 1 2; do
  run() { local name=$1; shift; rm -rf "$OUT/$name-s$seed"
          "$FAT" train "${COMMON[@]}" --seed "$seed" --out "$OUT/$name-s$seed" "$@"; }
  run curated-only --epochs $EPOCHS --train-splits curated
  run plain        --epochs $EPOCHS --train-splits curated,noisy
  run weighted     --epochs $EPOCHS --train-splits curated,noisy --split-weights curated=0.6,noisy=0.4
  run lsoft        --epochs $EPOCHS --train-splits curated,noisy --noisy-loss lsoft --lsoft-beta 0.7
  # Staged: half the budget on noisy alone, half fine-tuning on curated from its weights.
  rm -rf "$OUT/pretrain-noisy-$seed"
  "$FAT" train "${COMMON[@]}" --seed "$seed" --out "$OUT/pretrain-noisy-$seed" \
      --epochs $((EPOCHS / 2)) --train-splits noisy
  run staged       --epochs $((EPOCHS / 2)) --train-splits curated --init "$OUT/pretrain-noisy-$seed"
  # Selection: the plain run of this seed scores the noisy clips; keep those it agrees with.
  "$FAT" select-noisy "$OUT/plain-s$seed" --min-lwlrap 0.5 --out "$OUT/keep-$seed.txt" --quiet
  run selected     --epochs $EPOCHS --train-splits curated,noisy --noisy-clips "$OUT/keep-$seed.txt"
done
"$FAT" report "$OUT"/{curated-only,plain,weighted,lsoft,staged,selected}-s? --out "$OUT/report" --clips 0

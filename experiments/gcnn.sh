#!/usr/bin/env bash
# The original report's GCNN settings (gcnn_vanishing) vs fat's default GCNN vs the baseline
# CNN: same store, same budget (epochs, batch, LR, seed, width), on the demo data. Run after
# `make demo`.
#   bash experiments/gcnn.sh [STORE] [OUT]
set -euo pipefail
STORE=${1:-demo-out/features.zarr}
OUT=${2:-demo-out/gcnn-study}
FAT=${FAT:-.venv/bin/fat}
COMMON=(--store "$STORE" --width 0.25 --epochs 20 --batch-size 16 --lr 1e-3
        --train-splits curated,noisy --seed 0 --log-every 5 --quiet
        --schedule constant --mixup 0 --time-masks 0 --freq-masks 0)  # the defaults of then
for arch in gcnn_vanishing gcnn cnn; do
  rm -rf "$OUT/$arch"
  "$FAT" train "${COMMON[@]}" --arch "$arch" --out "$OUT/$arch"
done
# Which of those settings kills the gradients: flip one at a time towards fat's default.
ablate() { local name=$1; shift; rm -rf "$OUT/$name"
           "$FAT" train "${COMMON[@]}" --arch gcnn_vanishing --out "$OUT/$name" "$@"; }
ablate vanishing+log-pooling  --model-arg pooling=log
ablate vanishing+gated-rnn    --model-arg rnn_gate=gated
ablate vanishing+prior-bias   --model-arg prior_bias=true
ablate vanishing+default-init --model-arg init=default
"$FAT" report "$OUT/cnn" "$OUT/gcnn" "$OUT/gcnn_vanishing" --out "$OUT/report" --clips 1
"$FAT" report "$OUT/gcnn_vanishing" "$OUT"/vanishing+* "$OUT/gcnn" --out "$OUT/ablation" --clips 0

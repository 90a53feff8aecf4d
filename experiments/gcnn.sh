#!/usr/bin/env bash
# Issue 6: the seed's GCNN settings vs fat's default GCNN vs the baseline CNN, same store,
# same budget (epochs, batch, LR, seed, width), on the demo data. Run after `make demo`.
#   bash experiments/gcnn.sh [STORE] [OUT]
set -euo pipefail
STORE=${1:-demo-out/features.zarr}
OUT=${2:-demo-out/gcnn-study}
FAT=${FAT:-.venv/bin/fat}
COMMON=(--store "$STORE" --width 0.25 --epochs 20 --batch-size 16 --lr 1e-3
        --train-splits curated,noisy --seed 0 --log-every 5 --quiet)
for arch in gcnn_seed gcnn cnn; do
  rm -rf "$OUT/$arch"
  "$FAT" train "${COMMON[@]}" --arch "$arch" --out "$OUT/$arch"
done
"$FAT" report "$OUT/cnn" "$OUT/gcnn" "$OUT/gcnn_seed" --out "$OUT/report" --clips 1

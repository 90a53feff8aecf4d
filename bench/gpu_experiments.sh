#!/usr/bin/env bash
# The GPU experiment pack: the technique table of docs/recipes.md (experiments/techniques.py)
# at full width on the hard preset, within MINUTES of wall time (rows that do not fit are
# listed as not run), its figures as JSON in OUT/gpu_experiments.json.
#   bash bench/gpu_experiments.sh OUT
# Environment: PYTHON (python3), MINUTES (8), STEPS per run (2000), STEPS_PER_EPOCH (50),
# WIDTH (1.0), SEEDS
# (0,1,2), DEVICE (cuda), ROWS (all), STORE (a store to use instead of making the hard
# preset), EXTRA (flags for every training command).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:?output directory}")
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [[ -z ${STORE:-} ]]; then
  STORE=$OUT/hard/features.zarr
  if [[ ! -f $OUT/hard/ready ]]; then
    rm -rf "$OUT/hard"
    "$PYTHON" -m fat demo-data "$OUT/hard/data" --preset hard
    for split in curated noisy; do
      "$PYTHON" -m fat featurize --data-dir "$OUT/hard/data" --split $split --store "$STORE" --quiet
    done
    "$PYTHON" -m fat featurize --data-dir "$OUT/hard/data" --split test --store "$STORE" \
      --labels "$OUT/hard/data/test_labels.csv" --quiet
    touch "$OUT/hard/ready"
  fi
fi
"$PYTHON" experiments/techniques.py "$STORE" "$OUT/study" --device "$DEVICE" --in-process \
  --width "${WIDTH:-1.0}" --steps "${STEPS:-2000}" --steps-per-epoch "${STEPS_PER_EPOCH:-50}" \
  --seeds "${SEEDS:-0,1,2}" \
  --minutes "${MINUTES:-8}" --rows "${ROWS:-}" --extra "${EXTRA:-}" \
  --json "$OUT/gpu_experiments.json"

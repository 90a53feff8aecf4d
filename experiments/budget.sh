#!/usr/bin/env bash
# The budget of the technique table: the `default` recipe (CNN width 0.25, batch 32, curated
# only, 20% held out) trained for each of STEPS_LIST steps, one seed; each run's own
# one-cycle schedule spans its budget. experiments/budget_curve.py scores the last checkpoint
# of each on the test split and draws validation and test lwlrap against the steps. Jobs run
# JOBS at a time with one thread each, the longest first; a run whose cpu/ record exists is
# skipped and one killed mid-run resumes from its last epoch, so a killed study reruns from
# where it stopped.
#   bash experiments/budget.sh STORE OUT [JOBS]
set -euo pipefail
STORE=${1:?store of the hard preset}
OUT=${2:?output directory}
JOBS=${3:-2}
FAT=${FAT:-$PWD/.venv/bin/fat}
STEPS_LIST=${STEPS_LIST:-4000 2000 1000 500 250}
STEPS_PER_EPOCH=${STEPS_PER_EPOCH:-50}
SEED=${SEED:-0}
EXTRA=${EXTRA:-}
export STORE OUT FAT STEPS_PER_EPOCH SEED EXTRA
mkdir -p "$OUT/cpu"

budget() {  # STEPS: one run of that many steps; cpu/steps-STEPS marks it done
  set -euo pipefail  # bash -c under xargs does not inherit it: a failed run is not marked done
  local steps=$1 tag="steps-$1"
  local settings=(--recipe default --width 0.25 --train-splits curated --val-fraction 0.2
    --batch-size 32 --seed "$SEED" --steps-per-epoch "$STEPS_PER_EPOCH" $EXTRA)
  [[ -f "$OUT/cpu/$tag" ]] && return 0
  if [[ -f "$OUT/$tag/checkpoints/last.pt" ]]; then settings=(--resume); else rm -rf "${OUT:?}/$tag"; fi
  OMP_NUM_THREADS=1 /usr/bin/time -f "%U %S" -o "$OUT/cpu/$tag.tmp" \
    "$FAT" train "${settings[@]}" --store "$STORE" --out "$OUT/$tag" \
    --epochs $((steps / STEPS_PER_EPOCH)) --log-every "$STEPS_PER_EPOCH" --quiet \
    > "$OUT/$tag.log" 2>&1
  mv "$OUT/cpu/$tag.tmp" "$OUT/cpu/$tag"
  echo "$(date +%T) done $tag"
}
export -f budget

printf '%s\n' $STEPS_LIST | xargs -P "$JOBS" -I{} bash -c 'budget {}'
"${FAT%/fat}/python" experiments/budget_curve.py "$OUT"

#!/usr/bin/env bash
# What each technique buys, alone, on the hard preset: every row is the `default` recipe at
# width 0.25 with one change, the same budget (8 epochs x 32 steps x batch 32 = 8,192 crops),
# seeds 0, 1, 2, all curated clips in training (no hold-out) and scored on the test split by
# experiments/techniques_table.py. Jobs run JOBS at a time with one thread each; a job whose
# cpu/ record exists is skipped, so a killed study reruns from where it stopped.
#   bash experiments/techniques.sh STORE OUT [JOBS]
# EPOCHS and STEPS (per epoch) set the budget; EXTRA adds flags to every run (the test's
# tiny model).
set -euo pipefail
STORE=${1:?store of the hard preset}
OUT=${2:?output directory}
JOBS=${3:-2}
FAT=${FAT:-$PWD/.venv/bin/fat}
EPOCHS=${EPOCHS:-8}
STEPS=${STEPS:-32}
EXTRA=${EXTRA:-}
export STORE OUT FAT EPOCHS STEPS EXTRA
mkdir -p "$OUT/cpu"

job() {  # NAME SEED COMMAND ARGS...: one run (or CV), its CPU seconds into cpu/NAME-sSEED
  local name=$1 seed=$2 cmd=$3
  shift 3
  local tag="$name-s$seed"
  [[ -f "$OUT/cpu/$tag" ]] && return 0
  rm -rf "${OUT:?}/$tag"
  local common=(--store "$STORE" --out "$OUT/$tag" --recipe default --width 0.25 --epochs "$EPOCHS"
                --steps-per-epoch "$STEPS" --batch-size 32 --seed "$seed" --log-every "$STEPS" --quiet)
  [[ $cmd == train ]] && common+=(--val-fraction 0)
  OMP_NUM_THREADS=1 /usr/bin/time -f "%U %S" -o "$OUT/cpu/$tag.tmp" \
    "$FAT" "$cmd" "${common[@]}" $EXTRA "$@" > "$OUT/$tag.log" 2>&1
  mv "$OUT/cpu/$tag.tmp" "$OUT/cpu/$tag"
  echo "$(date +%T) done $tag"
}
export -f job

NOISY=(--train-splits curated,noisy)
HALF=(--train-splits curated,noisy --split-weights curated=0.5,noisy=0.5)
jobs_before() {  # runs that need nothing else; the long CVs first
  for s in 0 1 2; do echo "cv $s cv --folds 5 --train-splits curated"; done
  for s in 0 1 2; do
    echo "baseline $s train --train-splits curated"
    echo "mixer-concat $s train --train-splits curated --mixer concat"
    echo "mixer-specmix $s train --train-splits curated --mixer specmix"
    echo "balanced $s train --train-splits curated --sampler balanced"
    echo "ema $s train --train-splits curated --ema 0.99"
    echo "restarts $s train --train-splits curated --schedule cosine-restarts --cycle-epochs $((EPOCHS / 4))"
    echo "skip-attention $s train --train-splits curated --arch skip_attention"
    echo "noisy-plain $s train ${NOISY[*]}"
    echo "noisy-half $s train ${HALF[*]}"
    echo "noisy-lsoft $s train ${HALF[*]} --noisy-loss lsoft --lsoft-beta 0.7"
    echo "noisy-head $s train ${HALF[*]} --noisy-head"
    echo "pretrain-noisy $s train --train-splits noisy --epochs $((EPOCHS / 2))"
  done
}
jobs_after() {  # runs that start from a run above (the baseline of the same seed as teacher)
  for s in 0 1 2; do
    echo "staged $s train --train-splits curated --epochs $((EPOCHS / 2)) --init $OUT/pretrain-noisy-s$s"
    echo "noisy-selected $s train ${HALF[*]} --noisy-clips $OUT/keep-s$s.txt"
    echo "noisy-pseudo $s train ${HALF[*]} --noisy-targets $OUT/pseudo-s$s.csv"
  done
}
run_all() { xargs -P "$JOBS" -L 1 bash -c 'job "$@"' _; }

jobs_before | run_all
for s in 0 1 2; do
  teacher="$OUT/baseline-s$s"
  [[ -f "$OUT/keep-s$s.txt" ]] ||
    OMP_NUM_THREADS=2 "$FAT" select-noisy "$teacher" --min-lwlrap 0.5 --out "$OUT/keep-s$s.txt" --quiet
  [[ -f "$OUT/pseudo-s$s.csv" ]] ||
    OMP_NUM_THREADS=2 "$FAT" pseudo-label "$teacher" --temperature 0.5 --blend 0.25 \
      --out "$OUT/pseudo-s$s.csv" --quiet
done
jobs_after | run_all
"${FAT%/fat}/python" experiments/techniques_table.py "$OUT"

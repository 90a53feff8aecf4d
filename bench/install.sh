#!/usr/bin/env bash
# A fresh .venv exactly as `make venv` builds it, timed in one command: with pip (USE_UV=0:
# three sequential pip calls; pip's cache warm, as on any machine that installed before) and
# with uv (make's default: pip installs uv into the venv, uv installs the lock), uv's cache
# cold then warm; and what each DALI wheel (cuda120, cuda130) adds to a venv with torch.
# Prints Markdown tables.
#   bash bench/install.sh [WORKDIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${1:-$(mktemp -d)}
PY=${PYTHON:-python3}
cd "$ROOT"
mkdir -p "$W"

seconds() {
  local t0
  t0=$(date +%s.%N)
  "$@" > "$W/last.log" 2>&1
  printf "%.1f" "$(echo "$(date +%s.%N) - $t0" | bc)"
}
megabytes() { du -sm "$1" | cut -f1; }
nvidia_mb() { du -smc "$1"/lib/python3.11/site-packages/nvidia* | tail -1 | cut -f1; }
dali_venv() {  # $1 venv, $2 the DALI distribution
  "$PY" -m venv "$1"
  "$1/bin/python" -m pip install -q -c constraints.txt torch
  "$1/bin/python" -m pip install -q "$2==2.4.0"
}

rm -rf "$W"/{pip,uv-cold,uv-warm,uv-cache,dali120,dali130}
t_pip=$(seconds make venv VENV="$W/pip" USE_UV=0)
export UV_CACHE_DIR="$W/uv-cache"
t_cold=$(seconds make venv VENV="$W/uv-cold")
t_warm=$(seconds make venv VENV="$W/uv-warm")
for v in pip uv-cold uv-warm; do  # each venv must work, not only exist
  "$W/$v/bin/python" -c "import fat, torch, nvidia.dali, datasets, lhotse"
done
t_d120=$(seconds dali_venv "$W/dali120" nvidia-dali-cuda120)
t_d130=$(seconds dali_venv "$W/dali130" nvidia-dali-cuda130)

echo "| fresh .venv by \`make venv\` | seconds | venv MB |"
echo "|---|---:|---:|"
echo "| pip (\`USE_UV=0\`) | $t_pip | $(megabytes "$W/pip") |"
echo "| uv, its cache cold | $t_cold | $(megabytes "$W/uv-cold") |"
echo "| uv, its cache warm | $t_warm | $(megabytes "$W/uv-warm") |"
echo
echo "| torch 2.13.0 + DALI 2.4.0, pip | seconds | venv MB | DALI and its nvidia-* libraries, MB |"
echo "|---|---:|---:|---:|"
echo "| nvidia-dali-cuda120 | $t_d120 | $(megabytes "$W/dali120") | $(nvidia_mb "$W/dali120") |"
echo "| nvidia-dali-cuda130 | $t_d130 | $(megabytes "$W/dali130") | $(nvidia_mb "$W/dali130") |"

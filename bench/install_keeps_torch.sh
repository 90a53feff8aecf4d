#!/usr/bin/env bash
# `pip install .` into a venv that already has another torch keeps that torch (the
# dependencies are ranges, not pins): here torch 2.14.1, the CUDA 13 build on this machine's
# disk (~5.5 GB installed), where `make` would install 2.13.0.
#   bash bench/install_keeps_torch.sh [WORKDIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${1:-$(mktemp -d)}
rm -rf "$W/venv"
python3 -m venv "$W/venv"
"$W/venv/bin/pip" install -q torch==2.14.1
before=$("$W/venv/bin/python" -c "import torch; print(torch.__version__)")
"$W/venv/bin/pip" install -q "$ROOT"
after=$("$W/venv/bin/python" -c "import torch; print(torch.__version__)")
"$W/venv/bin/python" -m fat --version
echo "torch before: $before; after pip install .: $after"
[ "$before" = "$after" ]

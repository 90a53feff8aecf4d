#!/usr/bin/env bash
# The wheels the lent GPU machine lacks for bench/gpu_check.py, into .whl/ (git-ignored; carried
# with the run). Its python3 (3.12) has torch, h5py, pandas, click, numba, tqdm and matplotlib;
# zarr and its needs are what is missing for the check; the experiment pack
# (bench/gpu_experiments.sh) also writes and featurizes audio and scores with scikit-learn. nvidia-dali (~0.5 GB installed) is over what travels,
# so there the check runs the torch and GPU-resident paths and reports the DALI ones skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl \
  zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0 \
  soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1 pycparser==3.12 \
  scikit-learn==1.9.1 scipy==1.17.1 joblib==1.6.0 threadpoolctl==3.8.0
ls -la .whl

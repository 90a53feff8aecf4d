# Two entry points for a newcomer: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extras the tests need: the export formats' libraries, TensorBoard and S3 among them.
EXTRAS := test,fast,tensorboard,hf,lhotse,onnx,s3,events

.PHONY: venv lock print-uv-sources test test-fast demo lint format bench bench-scale gpu-check gpu-experiments clean

# uv installs the lock ~7x faster than pip (BENCHMARKS.md, "Installing"): it comes from the
# package index into .venv itself; USE_UV=0, or an index without it, falls back to pip. uv
# reads no pip configuration, so the machine's find-links and extra indexes (this machine's
# local CPU torch wheel) are passed to it, all indexes weighed alike as pip does.
# uv takes each version's files from the first index listing it; where that index has only
# soundfile's pure wheel (no bundled libsndfile), pip, which weighs every file, reinstalls it.
USE_UV ?= 1
pip_config = $(shell $(PYTHON) -m pip config get global.$(1) 2>/dev/null)
UV_SOURCES = $(addprefix --find-links ,$(call pip_config,find-links)) \
	$(addprefix --extra-index-url ,$(call pip_config,extra-index-url))

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if [ "$(USE_UV)" = 1 ] && $(BIN)/python -m pip install -q -c constraints.txt uv; then \
		$(BIN)/uv pip install -q --python $(BIN)/python --index-strategy unsafe-best-match \
			$(UV_SOURCES) -c constraints.txt -e ".[$(EXTRAS)]" && \
		{ $(BIN)/python -c "import soundfile" 2>/dev/null || \
		  $(BIN)/python -m pip install -q --force-reinstall --no-deps -c constraints.txt soundfile; }; \
	else \
		$(BIN)/python -m pip install -q --upgrade pip && \
		$(BIN)/python -m pip install -q -c constraints.txt torch && \
		$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"; \
	fi
	touch $(STAMP)

print-uv-sources:
	@echo $(UV_SOURCES)

venv: $(STAMP)

# Re-pin constraints.txt to what .venv holds (after a change to pyproject.toml's ranges).
lock: $(STAMP)
	{ echo "# Exact versions that make, CI and the benchmarks install; pyproject.toml holds the"; \
	  echo "# ranges. Written by make lock from a tested .venv. torch is the CPU wheel here"; \
	  echo "# (2.13.0+cpu satisfies ==2.13.0); an unpinned torch could pull a multi-GB CUDA build."; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -v '^pip==' | sed 's/+cpu$$//'; } > constraints.txt

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The edit loop: everything but the tests marked slow (kills, DDP, end-to-end runs).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP)
	$(BIN)/fat demo --out demo-out

bench: $(STAMP)
	$(BIN)/python bench/store_read.py
	$(BIN)/python bench/featurize.py
	$(BIN)/python bench/featurize_scaling.py
	$(BIN)/python bench/featurize_devices.py
	$(BIN)/python bench/loader.py

# The FSDKaggle2019-size rehearsal: ~11 GB store, every read and input figure (bench/scale.py).
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py

# On a CUDA machine: the full-width CNN and the GCNN through every input path (bench/gpu_check.py).
# GPU_PYTHON=python3 where torch comes with the machine (bench/gpu_wheels.sh for what it lacks).
GPU_PYTHON ?= $(BIN)/python
gpu-check:
	PYTHONPATH=$(CURDIR) $(GPU_PYTHON) bench/gpu_check.py

# On a CUDA machine, after the check: the technique table at full width in ~8 minutes, as JSON.
gpu-experiments:
	PYTHON=$(GPU_PYTHON) bash bench/gpu_experiments.sh gpu-experiments

clean:
	rm -rf $(VENV) demo-out .pytest_cache

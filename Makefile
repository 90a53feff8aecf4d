# Two entry points for a newcomer: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test test-fast demo lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned to the CPU wheel on this machine; install it first so nothing pulls a CUDA build.
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[test,fast]"
	touch $(STAMP)

venv: $(STAMP)

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

clean:
	rm -rf $(VENV) demo-out .pytest_cache

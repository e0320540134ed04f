# wttm - one command for each job. Every target creates the virtualenv .venv and installs into it when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PROFILE ?= default
MAX_MINUTES ?= 240
SWEEP  ?= sweeps/example.yaml

.PHONY: install test lint notebooks lab present sweep bench acceptance clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev,notebooks]"
	touch $(STAMP)

## test: ruff, then every test (unit, property, training, notebooks), then the browser tests (they reuse the
## notebook tests' cached smoke runs, so they come last)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not browser"
	$(BIN)/python -m pytest -m browser

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check wttm_core tests benchmarks

## notebooks: the main job - execute every notebook with papermill (offline profile) into build/notebooks/, with
## build/notebooks/index.html (HTML renderings that read offline, status, time, memory, size). No per-cell limit;
## MAX_MINUTES guards the run.
notebooks: $(STAMP)
	$(BIN)/python -m wttm_core.notebook_runner --out build/notebooks --profile $(PROFILE) --index --max-minutes $(MAX_MINUTES)

## lab: JupyterLab on the notebooks, for interactive use
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

## present: the interactive notebooks as Voila dashboards (code hidden, a random token), on 127.0.0.1
present: $(STAMP)
	$(BIN)/wttm present

## sweep: re-execute a notebook over a parameter grid (SWEEP=path.yaml) into build/sweeps/<name>/; the points'
## student runs that share a teacher train first as one cohort (notebook 05)
sweep: $(STAMP)
	$(BIN)/wttm sweep $(SWEEP)

## bench: the speed benchmarks (tables with a baseline in the same run)
bench: $(STAMP)
	$(BIN)/python benchmarks/losses.py
	$(BIN)/python benchmarks/train_step.py

## acceptance: the synthetic data set's acceptance tests including the long resnet32x4 vs resnet8 comparison
acceptance: $(STAMP)
	WTTM_FULL_ACCEPTANCE=1 $(BIN)/python -m pytest tests/test_synthetic_acceptance.py -s

clean:
	rm -rf build runs .pytest_cache .ruff_cache .hypothesis

# Two commands matter: `make demo` and `make test`. Both bootstrap .venv from nothing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The dev/CI machine keeps a CPU torch wheel in /opt/wheels; uv does not look there unless told.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
UV := $(BIN)/uv
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: venv test test-slow lint demo demo-data demo-train bench clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/uv
	$(UV) pip install -p $(BIN)/python $(FIND_LINKS) -c constraints.txt -e '.[all,dev]'
	touch $@

venv: $(VENV)/.installed

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: venv
	$(BIN)/python -m pytest -m slow -q

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

demo: venv
	$(BIN)/edgevla demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Every figure of benchmarks/plan.yaml side by side: benchmarks/results/report.md + .json + PNGs.
bench: venv
	$(BIN)/edgevla bench all --out benchmarks/results

# The demo policy's data: scripted-expert demonstrations on the simulated SO-101 (LeRobotDataset).
DEMO_DATA ?= runs/sim-reach-demos
demo-data: venv
	$(BIN)/edgevla sim demos --task reach --dataset $(DEMO_DATA) --episodes 50 --episode-seconds 5 --cameras front --size 96

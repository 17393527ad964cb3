# Two commands from a fresh clone: `make quick` (the quick preset through Snakemake) and `make test`.
# Both create the virtual environment in .venv on first use (pinned by constraints.txt).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup quick test test-fast report papers-reduced leaderboard-reduced gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,slurm]"
	touch $(STAMP)

quick: setup
	$(BIN)/snakemake --configfile config/quick.yaml

test: setup
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow"

PAPERS := fisher_masking mnemonic_code ssd_lfssd natmu del

# The five papers' grids at the reduced (CPU) scale, one after another; needs ../shared/data/cifar10-jpeg.tar.gz.
papers-reduced: setup
	for paper in $(PAPERS); do $(BIN)/snakemake --configfile config/papers/$$paper.yaml --config scale=reduced || exit 1; done

leaderboard-reduced: setup
	$(BIN)/snakemake --configfile config/leaderboard.yaml --config scale=reduced

# The prepared device check (one GPU, about 8 minutes): throughput, memory, the quick preset on CUDA.
gpu-check: setup
	$(BIN)/python benchmarks/gpu_check.py --device cuda

report: setup
	$(BIN)/snakemake --configfile config/quick.yaml --report report.html

clean:
	rm -rf results/quick figures/quick .snakemake

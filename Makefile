# Two commands from a fresh clone: `make quick` (the quick preset through Snakemake) and `make test`.
# Both create the virtual environment in .venv on first use (pinned by constraints.txt).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup quick test test-fast report clean

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

report: setup
	$(BIN)/snakemake --configfile config/quick.yaml --report report.html

clean:
	rm -rf results/quick figures/quick .snakemake

# pktsim: `make demo` runs the main job, `make test` passes the tests (fresh machine, Python 3.11+).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-fast lint bench fuzz notebooks notebook-outputs clean captures

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebook-run]'
	@# bytecode once, so a machine with PYTHONDONTWRITEBYTECODE=1 does not compile pktsim on
	@# every command (it reads .pyc files; it only never writes them)
	$(BIN)/python -m compileall -q pktsim > /dev/null
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(BIN)/pktsim demo --force

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -x -p no:cacheprovider -m "not kernel and not slow"

lint: $(STAMP)
	$(BIN)/ruff check pktsim tests benchmarks notebooks
	$(BIN)/mypy

# JupyterLab is heavy: installed only here, once per pyproject.toml version
NB_STAMP := $(VENV)/.notebooks-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
$(NB_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,notebook]'
	@rm -f $(VENV)/.notebooks-*
	@touch $@

notebooks: $(NB_STAMP)
	$(BIN)/jupyter lab notebooks/

# run every notebook top to bottom and store its outputs (committed: the repository shows
# them rendered; tests/docs/test_notebooks.py checks they are current).  The `notebook-run`
# extra (nbclient, nbconvert, ipykernel, ...) comes with $(STAMP); from the command line,
# `$(BIN)/jupyter nbconvert --to notebook --execute notebooks/01-tour.ipynb` works too.
notebook-outputs: $(STAMP)
	$(BIN)/python notebooks/execute.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) captures/demo .pytest_cache .mypy_cache .ruff_cache

captures: $(STAMP)
	for mode in routes vxlan ipip calico; do \
	  $(BIN)/pktsim demo --quiet --force --network $$mode --out captures/demo-$$mode || exit 1; \
	done
	$(BIN)/pktsim demo --quiet --force --ip-families IPv4,IPv6 --out captures/demo-dualstack

fuzz: $(STAMP)
	PKTSIM_FUZZ=$${PKTSIM_FUZZ:-20000} $(BIN)/python -m pytest -q -p no:cacheprovider \
	  --hypothesis-show-statistics tests/strategies/fuzz_long.py

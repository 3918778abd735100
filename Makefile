# The two commands of README.md. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install clean golden docs

# The install ends by compiling the numba kernels into their cache (twosided warmup,
# 30-60 s), so the first run starts at once.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# pip byte-compiles what it installs, but not an editable project's own modules; where
	# PYTHONDONTWRITEBYTECODE is set, every process would compile them again (about 0.7 s each)
	$(BIN)/python -m compileall -q sim agents policies experiments benchmarks
	$(BIN)/twosided warmup
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/twosided compare

test: $(STAMP)
	bash scripts/install_chromium.sh
	bash scripts/install_slurm.sh
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 2 -q --durations=15

# Regenerate tests/golden/ after an intended change of behaviour; say why in the commit.
golden: $(STAMP)
	$(BIN)/python tests/golden_cases.py --regenerate   # a script, not -m: cluster-experiments installs a package named `tests`

# Regenerate every number table in docs/ (between <!-- table:NAME --> markers); commit the result.
docs: $(STAMP)
	$(BIN)/python -m experiments.docs_tables

clean:
	rm -rf $(VENV) runs outputs multirun .pytest_cache

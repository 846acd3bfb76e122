# Two commands on a fresh machine: `make demo` and `make test`.
# torch is installed first and pinned (a CPU build on this disk); an unpinned torch pulled in
# by the project would fetch a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean mutation

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/trainlab demo

# Debian's PostgreSQL and Chromium for the store's and the report's tests (as root with
# apt-get; never fails: without them those tests skip and say why)
test: $(STAMP)
	-bash tools/install-postgres.sh
	-sh tools/install-chromium.sh
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

# Mutation testing (mutmut; the modules and tests are in pyproject's [tool.mutmut]). Not part of
# `make test` nor of CI: minutes on an idle machine, up to an hour on a busy one. MUTANTS
# narrows it to one module, e.g. `make mutation MUTANTS='trainlab.optim.lion*'`; results stay
# in mutants/ and a second run only tests what changed. One OpenMP thread: the forked test
# processes hang otherwise. docs/mutation.md has the kill rates and the equivalent mutants.
MUTANTS ?=
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[mutation]'
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) trainlab-runs

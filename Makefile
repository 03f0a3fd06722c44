# Two commands matter on a fresh machine with only Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SYNC := $(VENV)/bin/nymble-sync
STAMP := $(VENV)/.installed-stamp
DEMO_HOME := .nymble-sync/demo

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Sync the sample catalog into the in-process emulator twice: the second run sends nothing.
# Exit code 1 means "finished, some rows rejected": the sample has bad rows on purpose.
demo: $(STAMP)
	rm -rf $(DEMO_HOME)
	@echo "== first sync: every valid product is created; bad rows go to the rejects file"
	NYMBLE_SYNC_HOME=$(DEMO_HOME) $(SYNC) run mappings/products.yml; test $$? -le 1
	@echo "== second sync: nothing changed, so nothing is sent"
	NYMBLE_SYNC_HOME=$(DEMO_HOME) $(SYNC) run mappings/products.yml; test $$? -le 1

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check pipelines tests bench

bench: $(STAMP)
	$(PY) bench/bench_sync.py

clean:
	rm -rf $(VENV) .nymble-sync .pytest_cache

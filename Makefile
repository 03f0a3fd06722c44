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

# The main job on the embedded default (the in-process emulator, a SQLite ledger, no
# credentials): the sample catalog, then customers, a plan of the orders from the sample ERP
# database and their import, then the catalog again, which sends nothing because nothing changed.
# Exit code 1 means "finished, some rows rejected": the samples have bad rows on purpose.
demo: $(STAMP)
	rm -rf $(DEMO_HOME)
	@echo "== 1. products: every valid product is created; bad rows go to the rejects file"
	NYMBLE_SYNC_HOME=$(DEMO_HOME) $(SYNC) run mappings/products.yml; test $$? -le 1
	@echo "== 2. customers, before the orders that reference them"
	NYMBLE_SYNC_HOME=$(DEMO_HOME) $(SYNC) run mappings/customers.yml; test $$? -le 1
	@echo "== 3. plan the order import: what a run would create, reject and why; sends nothing"
	ERP_DATABASE_URL=sqlite:///sample_data/erp.sqlite NYMBLE_SYNC_HOME=$(DEMO_HOME) \
		$(SYNC) plan mappings/orders_sql.yml --sample 0
	@echo "== 4. orders with their lines from the ERP database (sample_data/erp.sqlite)"
	ERP_DATABASE_URL=sqlite:///sample_data/erp.sqlite NYMBLE_SYNC_HOME=$(DEMO_HOME) \
		$(SYNC) run mappings/orders_sql.yml; test $$? -le 1
	@echo "== 5. products again: nothing changed, so nothing is sent"
	NYMBLE_SYNC_HOME=$(DEMO_HOME) $(SYNC) run mappings/products.yml; test $$? -le 1
	@echo "== history of these runs"
	NYMBLE_SYNC_HOME=$(DEMO_HOME) $(SYNC) runs

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check pipelines tests bench

bench: $(STAMP)
	$(PY) bench/bench_sync.py

clean:
	rm -rf $(VENV) .nymble-sync .pytest_cache

# edi-storage: `make demo` and `make test` work as the first command on a fresh clone.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LOWEST_VENV ?= .venv-lowest
LOWEST_BIN := $(LOWEST_VENV)/bin
LOWEST_INSTALLED := $(LOWEST_VENV)/.installed
LOWEST_PINS := constraints/lowest.txt
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install demo test test-lowest test-postgres lint check-migrations migrate bench bench-cli bench-scale bench-smoke test-reliability soak docs wheel-check clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

# A venv of its own, built from scratch whenever the pins or pyproject change, so that no version
# left over from an earlier set of pins survives in it.
$(LOWEST_INSTALLED): pyproject.toml $(LOWEST_PINS)
	rm -rf $(LOWEST_VENV)
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_BIN)/python -m pip install --quiet --upgrade pip
	$(LOWEST_BIN)/python -m pip install --quiet -e '.[dev]' -c $(LOWEST_PINS)
	touch $(LOWEST_INSTALLED)

install: $(INSTALLED)  ## create .venv and install edi-storage with its dev extras

demo: install  ## create ./edi_sessions.db at head, fill it with sessions, show history and statistics
	$(BIN)/edi-storage demo

test: install  ## the SQLite suite (in-memory and temporary files; no server needed)
	$(BIN)/pytest -q

test-lowest: $(LOWEST_INSTALLED)  ## the SQLite suite with the core dependencies at pyproject's lower bounds (constraints/lowest.txt), in .venv-lowest
	@$(LOWEST_BIN)/python -c 'import sys; from importlib.metadata import version; \
	  pins = dict(l.split("#")[0].strip().split("==") for l in open(sys.argv[1]) if l.split("#")[0].strip()); \
	  [print(f"{n:<20} {version(n)}") for n in pins]; \
	  off = [f"{n} {version(n)} (pinned {v})" for n, v in pins.items() if version(n) != v]; \
	  sys.exit("not at the pinned version: " + ", ".join(off) if off else 0)' $(LOWEST_PINS)
	$(LOWEST_BIN)/pytest -q

test-postgres: install  ## the same suite on SQLite and on the PostgreSQL server at PG_URL
	EDI_STORAGE_TEST_POSTGRES_URL=$(PG_URL) $(BIN)/pytest -q

test-reliability: install  ## every load, fault and bad-input scenario, on SQLite and PostgreSQL
	EDI_STORAGE_TEST_POSTGRES_URL=$(PG_URL) $(BIN)/pytest -q tests/reliability -m 'not soak'

soak: install  ## the 60 s mixed-load soak (memory flat, no connection leak)
	EDI_STORAGE_TEST_POSTGRES_URL=$(PG_URL) $(BIN)/pytest -q tests/reliability -m soak

lint: install  ## ruff (lint + format) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check-migrations: install  ## `alembic check`: the models and the head revision must not drift
	@tmp=$$(mktemp -d) && EDI_STORAGE_URL=sqlite:///$$tmp/check.db $(BIN)/alembic upgrade head >/dev/null \
	  && EDI_STORAGE_URL=sqlite:///$$tmp/check.db $(BIN)/alembic check; status=$$?; rm -rf $$tmp; exit $$status

migrate: install  ## alembic upgrade head on EDI_STORAGE_URL (default sqlite:///edi_sessions.db)
	$(BIN)/alembic upgrade head

bench: install  ## edi-storage against fair hand-written SQL, the reference Database class and a plain ORM (SQLite and PostgreSQL at PG_URL)
	EDI_STORAGE_BENCH_POSTGRES_URL=$(PG_URL) $(BIN)/python benchmarks/bench.py

bench-cli: install  ## how fast the command line answers (--help, stats), against sqlite-utils in the same run
	$(BIN)/python benchmarks/cli_startup.py

bench-scale: install  ## the same measurements at 10 thousand and 1 million sessions (about half an hour)
	cd benchmarks && ../$(BIN)/python scale.py

bench-smoke: install  ## the benchmark still runs (tiny sizes, nothing timed)
	$(BIN)/pytest -q -m bench

docs: install  ## regenerate docs/schema.md (ER diagram) from the models
	$(BIN)/python docs/generate_schema.py

wheel-check: install  ## build the wheel, install it in a fresh venv, migrate from another directory
	bash .ci/wheel-check

clean:
	rm -rf $(VENV) $(LOWEST_VENV) build dist .pytest_cache .mypy_cache .ruff_cache edi_sessions.db*

# The two commands: `make demo` (the daily pipeline end to end) and `make test` (the test suite, on SQLite;
# `make test-postgres` runs it on PostgreSQL).
# Both create .venv and install everything on first use (scripts/setup.sh).

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-postgres check setup clean

demo: $(STAMP)
	$(BIN)/newsletter demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Static checks, run by .ci/run before the tests: ruff (lint + import order) and mypy (types), both configured in
# pyproject.toml.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The same suite on PostgreSQL (a fresh database per run on this server, dropped afterwards).
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
test-postgres: $(STAMP)
	NEWSLETTER_TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

clean:
	rm -rf $(VENV) var test-artifacts

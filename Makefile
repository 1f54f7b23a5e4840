# Two commands do all the set-up on a fresh machine:
#   make demo   -> runs the whole pipeline once, offline, against the bundled replay recordings
#   make test   -> lint (ruff), type-check (mypy), import contracts (lint-imports) and the test suite; this is what .ci/run calls
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench faults install clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[model,dev,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/watcher demo

lint: $(STAMP)
	$(BIN)/ruff check watcher classifiers store tools tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q

# every fault case (SMTP hung, kill -9, HTTP 5xx, bad TOML...) against the real CLI and local servers, as a table
faults: $(STAMP)
	$(BIN)/python tests/faults/run.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# Two commands do all the set-up on a fresh machine:
#   make demo   -> runs the whole pipeline once, offline, against the bundled replay recordings
#   make test   -> lint (ruff), type-check (mypy), import contracts (lint-imports) and the test suite; this is what .ci/run calls
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench faults install clean browser

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

# The whole suite once, on this CPU's own path; then the tests of the model's CPU path (marker cpu_path) again with
# oneDNN, ATen and MKL capped at AVX2 (the CPUs most users own: no AVX-512, no native bfloat16), so a kernel that
# only works on the build machine fails here first.
AVX2_CAP := ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
test: lint browser
	$(BIN)/pytest -q
	$(AVX2_CAP) $(BIN)/pytest -q -m cpu_path

# every fault case (SMTP hung, kill -9, HTTP 5xx, bad TOML...) against the real CLI and local servers, as a table
faults: $(STAMP)
	$(BIN)/python tests/faults/run.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

browser:  # Debian's chromium for tests/test_browser.py (root; does nothing when it is there)
	.ci/install-browser

# The README's two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow lint types imports bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/python examples/demo.py

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests testing bench
	$(BIN)/ruff format --check src tests testing bench

types: $(VENV)/.dev
	$(BIN)/mypy --strict src

imports: $(VENV)/.dev
	$(BIN)/lint-imports

# The fast tier (under 90 s on 2 cores, one worker per core); crash and fault trials and large
# fuzz budgets are `slow`.
test: lint types imports
	$(BIN)/pytest -m "not slow" -n auto --cov --cov-report=term:skip-covered

test-slow: $(VENV)/.dev
	$(BIN)/python -m pytest -m slow

bench: $(VENV)/.dev
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .coverage build dist

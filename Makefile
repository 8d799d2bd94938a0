# FreshID — `make run` starts the demo, `make test` runs every test. Both create the virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv run test lint bench clean

$(STAMP): pyproject.toml guard/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e './guard[starlette,fastapi,flask,django,sql]'
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/freshid demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests examples guard bench
	$(BIN)/ruff format --check src tests examples guard bench
	$(BIN)/mypy
	$(BIN)/mypy --strict guard/src

bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.peers

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

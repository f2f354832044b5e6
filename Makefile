# Two commands do all the set-up: `make book` builds the book, `make test` runs the tests.
# Both create the virtual environment .venv (Python 3.10+) with the book's package on first use;
# `make test` lints with ruff (configured in pyproject.toml) before it runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: book student-book test clean

$(BIN)/repro: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

book: $(BIN)/repro
	$(BIN)/repro book --preset quick

student-book: $(BIN)/repro
	$(BIN)/repro book --preset quick --student

test: $(BIN)/repro
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

clean:
	rm -rf _build

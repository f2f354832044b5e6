# Two commands do all the set-up: `make book` builds the book, `make test` runs the tests.
# Both create the virtual environment .venv (Python 3.10+) with the book's package on first use;
# `make test` lints with ruff (configured in pyproject.toml) before it runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# Debian packages the tests need: bubblewrap, the sandbox that `repro grade` runs submissions in;
# chromium and its driver, for the tests that open the built book in a browser.
# As root (CI) they are installed; anyone else is told in one line what to install.
SYSTEM_PACKAGES := bubblewrap chromium chromium-driver
SYSTEM_COMMANDS := bwrap chromium chromedriver

.PHONY: book student-book test clean system-packages

$(BIN)/repro: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	@touch $@

book: $(BIN)/repro
	$(BIN)/repro book --preset quick

student-book: $(BIN)/repro
	$(BIN)/repro book --preset quick --student

system-packages:
	@missing=""; for c in $(SYSTEM_COMMANDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else \
	    echo "make: install the Debian packages '$(SYSTEM_PACKAGES)' first (sudo apt-get install $(SYSTEM_PACKAGES)); missing:$$missing" >&2; exit 1; \
	  fi; \
	fi

test: $(BIN)/repro system-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

clean:
	rm -rf _build

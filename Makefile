# Two entry points for newcomers: `make run` (the product on Azurite and the local stand-ins) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test fuzz security-catalogue

$(STAMP): requirements.txt requirements-dev.txt package.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	npm install --no-audit --no-fund --silent
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m sandbox.run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The fuzz tests with a bigger budget than CI's 2,000 cases (FUZZ_CASES=... to choose another).
FUZZ_CASES ?= 20000
fuzz: $(STAMP)
	FUZZ_CASES=$(FUZZ_CASES) $(BIN)/python -m pytest tests/fuzz --timeout=1800

# Rewrite SECURITY.md's attack catalogue from the docstrings of tests/security/.
security-catalogue:
	$(BIN)/python -m tests.security.catalogue --write

# Two entry points for newcomers: `make run` (the product on Azurite and the local stand-ins) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test

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

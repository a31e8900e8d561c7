# Two entry points for newcomers: `make run` (the product on Azurite and the local stand-ins) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test mutation

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

# Mutation testing of the security- and exactly-once-critical modules (configured in pyproject.toml): slow, so not
# part of `test`. One child at a time: the unit tests that use Azurite share its port.
mutation: $(STAMP)
	mkdir -p mutants && ln -sfn ../node_modules mutants/node_modules
	$(BIN)/mutmut run --max-children 1
	$(BIN)/mutmut results

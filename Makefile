# Two entry points for newcomers: `make run` (the product on Azurite and the local stand-ins) and `make test`.
# Needs only Python 3.11, Node.js 20 and make: everything else comes from PyPI and npm (no root, no apt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := .browser/version

.PHONY: run test tools mutation fuzz security-catalogue

$(STAMP): requirements.txt requirements-dev.txt package.json package-lock.json
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is needed (set PYTHON=python3.11)")'
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 11) ? 0 : 1)' \
		|| { echo "Node.js 20.11 or later is needed (https://nodejs.org)" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	npm install --no-audit --no-fund --silent
	touch $(STAMP)

# The headless Chromium inside the npm package @sparticuz/chromium, unpacked once (tests/e2e/browser.py).
$(CHROMIUM): $(STAMP)
	$(BIN)/python -m tests.e2e.browser && touch $@

tools: $(STAMP) $(CHROMIUM)

run: $(STAMP)
	$(BIN)/python -m sandbox.run

test: tools
	$(BIN)/ruff check .
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered

# Mutation testing of the security- and exactly-once-critical modules (configured in pyproject.toml): slow, so not
# part of `test`. One child at a time: the unit tests that use Azurite share its port.
mutation: $(STAMP)
	mkdir -p mutants && ln -sfn ../node_modules mutants/node_modules
	$(BIN)/mutmut run --max-children 1
	$(BIN)/mutmut results

# Offline checks of infra/ at the tools' current releases, each in its own cached venv under .cache/ (azure-cli is
# ~730 MB; checkov 3.3 pins packaging<24, which pytest 9 cannot share): regenerates the snapshot of the real az CLI's
# command table for the commands the deploy scripts run (tests/infra/data/az-commands.json; commit it if it changed),
# then runs tests/infra with checkov at its current release. Not part of `make test`; takes a few minutes.
AZURE_CLI_VERSION := 2.91.0
CHECKOV_VERSION := 3.3.30
AZCLI_VENV := .cache/azcli-venv
CHECKOV_VENV := .cache/checkov-venv

.PHONY: check-infra

$(AZCLI_VENV)/.installed-$(AZURE_CLI_VERSION):
	test -x $(AZCLI_VENV)/bin/python || $(PYTHON) -m venv $(AZCLI_VENV)
	$(AZCLI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check azure-cli==$(AZURE_CLI_VERSION)
	touch $@

$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

check-infra: $(STAMP) $(AZCLI_VENV)/.installed-$(AZURE_CLI_VERSION) $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
	$(BIN)/python -m tests.infra.az_commands $(AZCLI_VENV)/bin/az
	CHECKOV=$(CHECKOV_VENV)/bin/checkov $(BIN)/python -m pytest -q tests/infra

# The fuzz tests with a bigger budget than CI's 2,000 cases (FUZZ_CASES=... to choose another).
FUZZ_CASES ?= 20000
fuzz: $(STAMP)
	FUZZ_CASES=$(FUZZ_CASES) $(BIN)/python -m pytest tests/fuzz --timeout=1800

# Rewrite SECURITY.md's attack catalogue from the docstrings of tests/security/.
security-catalogue:
	$(BIN)/python -m tests.security.catalogue --write

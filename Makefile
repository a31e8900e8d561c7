# Two entry points for newcomers: `make run` (the product on Azurite and the local stand-ins) and `make test`.
# Needs only Python 3.11, Node.js 20 and make: everything else comes from PyPI and npm (no root, no apt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := .browser/version

.PHONY: run test tools

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

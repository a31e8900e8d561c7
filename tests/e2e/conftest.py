"""Headless Chromium (from the npm package @sparticuz/chromium, see browser.py) driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.browser import BrowserMissing, launch_options

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
# Playwright waits for each event (navigation, element, text) up to this long; a loaded 2-core machine is slow, not
# broken, so the cap is generous and no test waits on the clock itself.
PATIENCE_MS = 60_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def chromium():
    try:
        options = launch_options()
    except BrowserMissing as missing:
        pytest.fail(str(missing))
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=PATIENCE_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(headless=True, args=CHROMIUM_ARGS, **options)
        yield browser
        browser.close()


@pytest.fixture()
def new_context(chromium):
    """Browser contexts (separate cookie jars, like separate people) closed after the test."""
    contexts = []

    def make(**options):
        context = chromium.new_context(ignore_https_errors=True, **options)
        context.set_default_timeout(PATIENCE_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture()
def screenshots(request) -> Path:
    folder = OUTPUT / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder

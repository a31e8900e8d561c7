"""In Chromium: the status page and the SMS report pass axe-core's WCAG 2.1 AA rules at 100 % and 200 % zoom, and
work with the keyboard alone: every control in reading order with a visible focus, the range and filter form, and
charts and tables with text alternatives. The portal pages are in English only (they are not localized).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from sandbox import config
from sandbox.entra import REPORTS_READER_UPN
from shared.storage.config import ConfigRepository
from shared.storage.messages import MessageLog
from tests.e2e.test_accessibility import assert_accessible, fits_without_sideways_scrolling
from tests.e2e.test_status_reports import a_week_of_visits_and_texts

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 800}
# 200 % zoom on that screen: the page lays out in half the CSS pixels.
DESKTOP_AT_200 = {"width": 640, "height": 400}
PAGES = {"status": "/api/portal/status", "sms-report": "/api/portal/reports/sms?days=7"}
# What document order puts in the Tab sequence (no positive tabindex anywhere, so it is the Tab order too).
FOCUSABLE = ("a[href], button:not([disabled]), input:not([type=hidden]), select, textarea, "
             "[tabindex]:not([tabindex='-1'])")


def a_week_of_emails(accounts) -> None:
    """Emails next to the texts in the message log (opaque keys only), some failed, so both channels have counts."""
    repository = ConfigRepository(accounts)
    endpoint = next(e for e in repository.endpoints(config.ENTRA_TENANT_ID) if e.environment == "test")
    region, log, now = repository.region(config.ENTRA_TENANT_ID), MessageLog(accounts), datetime.now(UTC)
    for day in range(0, 6):
        row, sent = secrets.token_hex(16), now - timedelta(days=day, hours=3)
        log.sent(region, endpoint.id, row, "confirmation", "sent", sent, channel="email")
        log.delivered(region, endpoint.id, row, "failed" if day % 3 == 0 else "delivered", sent, sent)


@pytest.fixture(scope="module")
def figures(sandbox, accounts) -> None:
    a_week_of_visits_and_texts(accounts)
    a_week_of_emails(accounts)


def signed_in(sandbox, new_context, viewport: dict[str, int]) -> Page:
    """A Reports Reader's browser at this viewport, signed in to the portal."""
    host = sandbox.world.host_url
    page = new_context(viewport=viewport).new_page()
    page.goto(f"{host}/api/portal/auth/signin?login_hint={REPORTS_READER_UPN}")
    page.wait_for_url(re.compile(rf"{re.escape(host)}/api/portal($|\?)"))
    return page


def tab_sequence(page: Page) -> list[dict[str, Any]]:
    """Press Tab from the top of a freshly loaded page until focus leaves it; each stop with how its focus is drawn."""
    stops: list[dict[str, Any]] = []
    for _ in range(80):
        page.keyboard.press("Tab")
        stop = page.evaluate("""() => {
            const e = document.activeElement;
            if (!e || e === document.body) return null;
            const style = getComputedStyle(e);
            return {tag: e.tagName.toLowerCase(), name: e.getAttribute('name') || '',
                    text: (e.textContent || '').trim().slice(0, 40),
                    outline: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth) || 0,
                    key: e.outerHTML.slice(0, 120)};
        }""")
        if stop is None or (stops and stop["key"] == stops[0]["key"]):
            break
        if not stops or stop["key"] != stops[-1]["key"]:  # a date field's month, day and year are one control
            stops.append(stop)
    return stops


def tab_past(page: Page, name: str) -> None:
    """Press Tab until focus leaves the named field (a date field takes a Tab per remaining part)."""
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") != name:
            return
    raise AssertionError(f"Tab does not leave the {name} field")


def document_order(page: Page) -> list[str]:
    return page.evaluate(f"[...document.querySelectorAll({FOCUSABLE!r})].map(e => e.outerHTML.slice(0, 120))")


@pytest.mark.parametrize("viewport", [DESKTOP, DESKTOP_AT_200], ids=["100", "200"])
@pytest.mark.parametrize("name", PAGES)
def test_the_status_page_and_the_sms_report_pass_axe_at_100_and_200_percent(sandbox, figures, new_context,
                                                                            screenshots, name, viewport):
    page = signed_in(sandbox, new_context, viewport)
    page.goto(f"{sandbox.world.host_url}{PAGES[name]}")
    expect(page.locator("h1")).to_be_visible()
    assert page.get_attribute("html", "lang") == "en"
    zoom = "100" if viewport == DESKTOP else "200"
    assert_accessible(page, screenshots, f"{name}-{zoom}")
    assert fits_without_sideways_scrolling(page), f"{name} scrolls sideways at {zoom} % (wide tables scroll inside)"


@pytest.mark.parametrize("name", PAGES)
def test_every_control_is_reached_by_tab_in_reading_order_with_a_visible_focus(sandbox, figures, new_context, name):
    page = signed_in(sandbox, new_context, DESKTOP)
    page.goto(f"{sandbox.world.host_url}{PAGES[name]}")
    stops = tab_sequence(page)
    assert [stop["key"] for stop in stops] == document_order(page), "Tab follows the reading order, skipping none"
    unseen = [stop["key"] for stop in stops if stop["outline"] in ("none", "") or stop["outlineWidth"] < 2]
    assert not unseen, f"focus is not visible on {unseen}"
    texts = [stop["text"] for stop in stops]
    assert texts[0].startswith("← Back to the configuration portal")
    if name == "sms-report":
        assert [t for t in texts if t.startswith("Last ")] == ["Last 7 days", "Last 30 days", "Last 90 days"]
        assert [stop["name"] for stop in stops if stop["name"]] == ["from", "to", "environment"]
        assert texts.index("Show") < texts.index("Download CSV"), "the form, then its downloads"
    else:  # the wide tables scroll inside a region a keyboard user can reach and scroll
        assert sum(stop["tag"] == "div" for stop in stops) >= 3


def test_the_range_and_filter_form_works_with_the_keyboard_alone(sandbox, figures, new_context):
    page = signed_in(sandbox, new_context, DESKTOP)
    page.goto(f"{sandbox.world.host_url}{PAGES['sms-report']}")
    last = (datetime.now(UTC) - timedelta(days=1)).date()
    first = last - timedelta(days=4)
    stops = 0
    while page.evaluate("document.activeElement.name") != "from":
        page.keyboard.press("Tab")
        stops += 1
        assert stops < 20, "the From field cannot be reached with Tab"
    # A date field takes its parts as typed digits, moving from part to part on its own (en-US: month, day, year);
    # Tab then walks past its remaining parts to the next field.
    page.keyboard.type(f"{first:%m%d%Y}")
    tab_past(page, "from")
    assert page.evaluate("document.activeElement.name") == "to"
    page.keyboard.type(f"{last:%m%d%Y}")
    tab_past(page, "to")
    assert page.evaluate("document.activeElement.name") == "environment"
    page.keyboard.press("ArrowDown")  # All → Test
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Show"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*from=.*"))
    assert f"from={first.isoformat()}" in page.url and f"to={last.isoformat()}" in page.url
    assert "environment=test" in page.url
    assert page.input_value('input[name="from"]') == first.isoformat()
    assert page.input_value('input[name="to"]') == last.isoformat(), "the form shows the range it was given"
    assert page.input_value('select[name="environment"]') == "test"


def test_charts_and_tables_have_text_alternatives(sandbox, figures, new_context):
    page = signed_in(sandbox, new_context, DESKTOP)
    page.goto(f"{sandbox.world.host_url}{PAGES['sms-report']}")
    chart = page.get_by_role("img", name=re.compile("Messages per day by delivery status"))
    expect(chart).to_be_visible()
    assert "The table below lists the same numbers" in chart.evaluate(
        "e => document.getElementById(e.getAttribute('aria-labelledby').split(' ')[1]).textContent")
    per_day = page.get_by_role("table", name="Messages per day, channel and type")
    assert per_day.get_by_role("columnheader").count() == 7 and per_day.get_by_role("rowheader").count() >= 6
    channels = page.get_by_role("table", name="Texts and emails by delivery status")
    expect(channels.get_by_role("rowheader", name="Email")).to_be_visible()
    expect(channels.get_by_role("rowheader", name="Text (SMS)")).to_be_visible()

    page.goto(f"{sandbox.world.host_url}{PAGES['status']}")
    for caption in ("Texts sent and delivered per sending number",
                    "Emails sent and delivered, next to the texts above"):
        table = page.get_by_role("table", name=caption)
        expect(table).to_be_visible()
        assert table.get_by_role("columnheader").count() == 7
    assert page.get_by_role("region", name=re.compile("status$")).count() >= 1, "each endpoint's table is named"

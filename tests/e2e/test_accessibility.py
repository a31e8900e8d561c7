"""In Chromium: every page passes axe-core's WCAG 2.1 AA rules and works with the keyboard; patient pages fit a
phone at 200 % zoom. Screenshots of each page land in test-output/."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

from sandbox.entra import ADMIN_UPN
from tests.integration.launching import new_appointment
from tests.integration.test_visits import sealed_link

pytestmark = pytest.mark.e2e

WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
PHONE = {"width": 390, "height": 844}
# 200 % zoom on that phone: the page lays out in half the CSS pixels.
PHONE_AT_200 = {"width": 195, "height": 422}
# The patient languages (shared/sms/texts.py) and a browser locale asking for each.
LANGUAGES = {"en": "en-US", "es": "es-ES", "pt-BR": "pt-BR"}


def assert_accessible(page: Page, folder, name: str) -> None:
    """Zero axe violations (the report names each rule and node when not), and a screenshot for the record."""
    page.screenshot(path=folder / f"{name}.png", full_page=True)
    results = Axe().run(page, options=WCAG_21_AA)
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"


def fits_without_sideways_scrolling(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")


def tab_to(page: Page, selector: str, presses: int = 20) -> None:
    """Press Tab until the element has focus, and check the focus is visible (an outline is drawn)."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement === document.querySelector({selector!r})"):
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("none", ""), f"{selector} has focus but no visible outline"
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


@pytest.mark.parametrize("language", LANGUAGES)
def test_patient_pages_in_each_language(sandbox, oracle, new_context, screenshots, language):
    early, _name, _mobile = new_appointment(oracle, minutes_from_now=24 * 60)
    # A link ends with its appointment (end + the grace hours), whatever its own expiry says: a visit of this morning.
    ended, _name, _mobile = new_appointment(oracle, minutes_from_now=-6 * 60)
    pages = {"invalid": f"{sandbox.world.host_url}/api/join/not-a-link",
             "expired": sealed_link(sandbox, ended),
             "early": sealed_link(sandbox, early)}
    for viewport, label in ((PHONE, "phone"), (PHONE_AT_200, "phone-200")):
        page = new_context(viewport=viewport, locale=LANGUAGES[language]).new_page()
        for kind, url in pages.items():
            page.goto(url)
            # A link that opens nothing speaks the browser's language; one that names a visit, the patient's own
            # (read from Cerner).
            lang = page.get_attribute("html", "lang")
            assert lang == language if kind == "invalid" else lang in LANGUAGES, f"{kind}: lang={lang}"
            assert_accessible(page, screenshots, f"{kind}-{language}-{label}")
            assert fits_without_sideways_scrolling(page), f"{kind} page scrolls sideways at {label}"
            assert page.locator("h1").bounding_box()["width"] <= viewport["width"]


def test_error_page(sandbox, new_context, screenshots):
    page = new_context().new_page()
    page.goto(f"{sandbox.world.host_url}/api/launch/provider")
    assert page.locator("h1").is_visible()
    assert_accessible(page, screenshots, "error-launch-without-parameters")
    page.goto(f"{sandbox.world.host_url}/api/unsubscribe/not-a-link")
    assert page.locator("h1").is_visible()
    assert_accessible(page, screenshots, "unsubscribe-bad-link")


def test_provider_visit_page_with_the_keyboard(sandbox, oracle, entra, new_context, screenshots):
    appointment, patient_name, _mobile = new_appointment(oracle)
    provider = new_context().new_page()
    provider.goto(f"{sandbox.world.oracle_url}/powerchart")
    provider.click(f'a[data-appointment-id="{appointment}"]')
    if "/oauth2/v2.0/authorize" in provider.url:
        provider.click('button[value="dr.grey@contoso-health.example"]')
    provider.wait_for_url(re.compile(r".*/api/visits/.*"))
    provider.get_by_text(patient_name).wait_for()
    assert_accessible(provider, screenshots, "provider-visit")
    tab_to(provider, "#join-teams")
    tab_to(provider, "#send-link-button")
    provider.keyboard.press("Enter")
    provider.locator("#send-result").get_by_text("Sent to").wait_for()
    assert_accessible(provider, screenshots, "provider-visit-after-send")


def test_portal_sign_in_and_steps(sandbox, entra, new_context, screenshots):
    page = new_context().new_page()
    page.goto(f"{sandbox.world.host_url}/api/portal")
    assert_accessible(page, screenshots, "portal-signed-out")
    entra.auto_sign_in_upn = ADMIN_UPN
    try:
        page.goto(f"{sandbox.world.host_url}/api/portal/auth/signin")
        page.wait_for_url(f"{sandbox.world.host_url}/api/portal")
        page.wait_for_load_state("networkidle")
        assert_accessible(page, screenshots, "portal-1-configuration")
        tab_to(page, "input:not([type=hidden])")
        page.click('.step-tab[data-step="2"]')
        page.wait_for_load_state("networkidle")
        assert_accessible(page, screenshots, "portal-2-notifications")
        page.click('.step-tab[data-step="3"]')
        page.locator("#records .record-card").first.wait_for()  # the sandbox has registered endpoints
        assert_accessible(page, screenshots, "portal-3-review")
        tab_to(page, "#records .record-card button.copy")
        page.goto(f"{sandbox.world.host_url}/api/portal/reports/usage")
        page.wait_for_load_state("networkidle")
        assert_accessible(page, screenshots, "usage-report")
    finally:
        entra.auto_sign_in_upn = None


def test_the_checker_finds_what_it_must(new_context, screenshots):
    """A page with an unlabeled field, an image without text and faint text fails: the checks above can fail."""
    page = new_context().new_page()
    page.set_content('<html><body><main><img src="x.png"><input type="text">'
                     '<p style="color:#bbb;background:#fff">faint</p></main></body></html>')
    results = Axe().run(page, options=WCAG_21_AA)
    rules = {violation["id"] for violation in results.response["violations"]}
    assert {"image-alt", "label", "color-contrast", "html-has-lang"} <= rules

"""In Chromium: a Global Administrator walks the whole wizard on a fresh organization, then a provider launches."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from sandbox import config
from sandbox.entra import ADMIN_UPN, PROVIDER_UPN
from sandbox.run import start_sandbox
from tests.integration.launching import PRACTITIONER, todays_appointments

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "portal"
# Its own sandbox, beside the suite's (which follows the same variable).
PORT_OFFSET = int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "1000")) + 1200
ORGANIZER = "virtual.appointments@contoso-health.example"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, dev_ca):
    """A sandbox with no configuration at all: the organization starts from the empty wizard."""
    running = start_sandbox(offset=PORT_OFFSET, state_dir=tmp_path_factory.mktemp("portal-sandbox"), seed=False,
                            ca=dev_ca)
    try:
        yield running
    finally:
        running.stop()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def message(page, text: str) -> None:
    expect(page.locator("#message")).to_contain_text(text)


def sign_in(page, host: str) -> None:
    page.goto(f"{host}/api/portal")
    shot(page, "01-sign-in")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.wait_for_url(re.compile(r".*/oauth2/v2.0/authorize.*"))
    shot(page, "02-microsoft-account-picker")
    page.click(f'button[value="{ADMIN_UPN}"]')
    page.wait_for_url(f"{host}/api/portal")
    page.get_by_text("Global Administrator").first.wait_for()


def loaded(page, step: int) -> None:
    page.locator(f'#step-{step}[aria-busy="false"]').wait_for()


def step_1(page, fresh, departments: list[str]) -> None:
    loaded(page, 1)
    page.fill("#base-url", fresh.world.fhir_base())
    page.check("input[name=environment][value=test]")
    page.fill("#display-name", "Contoso Health (test)")
    page.fill("#departments", ", ".join(departments))
    page.fill("#organizer", ORGANIZER)
    page.click("#validate")
    message(page, "The FHIR base URL is valid (FHIR 4.0.1).")
    assert page.locator("#checks li").count() == 8
    page.select_option("#region", "americas")
    shot(page, "03-step1-validated")
    page.click("#save-endpoint")
    message(page, "Added the FHIR base URL.")
    page.locator("#endpoints tbody tr", has_text="Contoso Health (test)").wait_for()
    page.get_by_text("Your organization's data region is").wait_for()
    expect(page.locator("#licence-state")).to_contain_text("Licensed: Microsoft_Cloud_for_Healthcare is active.")
    shot(page, "04-step1-saved")


def step_2(page) -> str:
    page.get_by_role("button", name="Next: SMS").click()
    loaded(page, 2)
    page.check("#consent-send")
    page.check("#consent-attendees")
    page.click("#save-consents")
    page.get_by_text("Both consents are recorded").wait_for()
    shot(page, "05-step2-consent")
    page.select_option("#country", "US")
    page.click("#generate")
    expect(page.locator("#number-progress-label")).to_contain_text("Step")
    shot(page, "06-step2-generating")
    message(page, "is provisioned")
    number = re.search(r"\+1\d{10}", page.text_content("#message")).group(0)
    page.locator("#numbers tbody tr", has_text=number).wait_for()
    shot(page, "07-step2-number-provisioned")
    page.locator("select[id^=sms-number-]").select_option(number)
    page.locator("input[id^=reminders-]").fill("1440, 15")
    page.get_by_role("button", name="Save SMS settings of Contoso Health (test)").click()
    message(page, "Saved the SMS settings of Contoso Health (test).")
    shot(page, "08-step2-number-linked")
    return number


def step_3(page, fresh) -> None:
    page.get_by_role("button", name="Next: Review").click()
    loaded(page, 3)
    card = page.locator(".record-card", has_text="Contoso Health (test)")
    card.wait_for()
    host = fresh.world.host_url
    assert card.locator('[data-field="provider_launch_url"]').text_content() == \
        f"{host}/api/launch/provider?environment=test"
    assert card.locator('[data-field="redirect_uri"]').text_content() == f"{host}/api/launch/callback"
    assert card.locator('[data-field="client_id"]').text_content() == config.SMART_CLIENT_ID
    card.get_by_role("button", name="Copy Provider launch URL of Contoso Health (test)").click()
    message(page, "Copied the Provider launch URL.")
    shot(page, "09-step3-review")
    page.click("#finish")
    message(page, "Configuration complete.")


def test_admin_configures_everything_then_a_provider_launch_works(fresh, new_context):
    oracle, acs = fresh.standins["oracle"], fresh.standins["acs"]
    departments = [str(location["id"]) for location in oracle.all_resources("Location")][:2]
    admin = new_context(permissions=["clipboard-read", "clipboard-write"]).new_page()
    sign_in(admin, fresh.world.host_url)
    step_1(admin, fresh, departments)
    number = step_2(admin)
    assert number in acs.numbers
    step_3(admin, fresh)

    provider = new_context().new_page()
    provider.goto(f"{fresh.world.oracle_url}/powerchart")
    provider.click(f'a[data-appointment-id="{todays_appointments(oracle, PRACTITIONER)[0]}"]')
    provider.wait_for_url(re.compile(r".*/oauth2/v2.0/authorize.*"))
    provider.click(f'button[value="{PROVIDER_UPN}"]')
    provider.wait_for_url(re.compile(r".*/api/visits/.*"))
    assert provider.get_by_role("link", name="Join in Teams").is_visible()
    shot(provider, "10-provider-launch")
    remove_with_confirmation(admin)


def remove_with_confirmation(page) -> None:
    """Remove asks first, naming the provider link it deletes; Cancel keeps the URL, confirming removes both."""
    page.get_by_role("button", name="1. Configuration").click()
    loaded(page, 1)
    page.get_by_role("button", name="Remove Contoso Health (test)").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("also deletes the 1 provider link to Microsoft accounts")
    shot(page, "11-step1-remove-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    message(page, "Kept Contoso Health (test).")
    page.get_by_role("button", name="Remove Contoso Health (test)").click()
    page.get_by_role("button", name="Remove and delete 1 provider link").click()
    message(page, "Removed Contoso Health (test) and 1 provider link.")
    expect(page.locator("#endpoints tbody tr", has_text="Contoso Health (test)")).to_have_count(0)

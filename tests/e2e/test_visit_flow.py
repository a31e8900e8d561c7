"""In Chromium: PowerChart → Teams link → one-time Microsoft sign-in → visit page → send link → patient in the lobby."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.integration.launching import new_appointment

# Where the patient types a name and joins: the virtual-appointment page, or the meeting's own page as a guest.
PATIENT_FORM = {"virtual-appointment link": ("#name", "#join"), "meeting link": ("#guest-name", "#guest-join")}


def test_provider_sends_link_and_sees_the_patient_arrive(sandbox, oracle, acs, entra, new_context, screenshots,
                                                         join_link_mode):
    appointment, patient_name, mobile = new_appointment(oracle)
    before = len(acs.outbox(mobile))
    provider = new_context().new_page()

    provider.goto(f"{sandbox.world.oracle_url}/powerchart")
    provider.screenshot(path=screenshots / "1-powerchart.png")
    provider.click(f'a[data-appointment-id="{appointment}"]')
    if "/oauth2/v2.0/authorize" in provider.url:  # first launch: the one-time Microsoft sign-in (account picker)
        provider.screenshot(path=screenshots / "2-microsoft-sign-in.png")
        provider.click('button[value="dr.grey@contoso-health.example"]')
    provider.wait_for_url(re.compile(r".*/api/visits/.*"))
    provider.get_by_text(patient_name).wait_for()
    assert provider.get_by_role("link", name="Join in Teams").is_visible()
    provider.screenshot(path=screenshots / "3-visit-page.png")

    provider.click("#send-link-button")
    expect(provider.locator("#send-result")).to_contain_text("Sent to")
    assert f"•••• {mobile[-4:]}" in provider.text_content("#send-result")
    messages = acs.outbox(mobile)
    assert len(messages) == before + 1
    link = re.search(r"(http://\S+/api/join/[A-Za-z0-9_-]+)", messages[-1].message).group(1)

    patient = new_context(viewport={"width": 390, "height": 844}).new_page()  # a phone, no account
    patient.goto(link)
    name_field, join_button = PATIENT_FORM[join_link_mode]
    patient.fill(name_field, "Patient")
    patient.click(join_button)
    patient.get_by_text("Someone in the meeting should let you in soon").wait_for()
    patient.screenshot(path=screenshots / "4-patient-lobby.png")

    expect(provider.locator("#patient-status")).to_contain_text("Patient opened the link")
    provider.screenshot(path=screenshots / "5-provider-sees-patient.png")
    teams = provider.context.new_page()
    teams.goto(provider.get_attribute("#join-teams", "href"))
    teams.get_by_text("Patient (waiting)").wait_for()
    teams.screenshot(path=screenshots / "6-teams-lobby.png")
    assert patient_name not in link and appointment not in link

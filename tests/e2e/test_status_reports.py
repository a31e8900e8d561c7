"""In Chromium: a Reports Reader opens the status page, the usage report with its charts and the SMS report
(screenshots in test-output/status-reports/, the README's images come from them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from sandbox.entra import REPORTS_READER_UPN

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "status-reports"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    page.screenshot(path=SHOTS / f"{name}.jpg", type="jpeg", quality=55, full_page=False)


def test_a_reports_reader_sees_the_status_the_charts_and_the_sms_report_without_scripts(sandbox, new_context):
    host = sandbox.world.host_url
    page = new_context(viewport={"width": 1100, "height": 900}, java_script_enabled=False).new_page()
    page.goto(f"{host}/api/portal/auth/signin?login_hint={REPORTS_READER_UPN}")
    page.wait_for_url(re.compile(rf"{re.escape(host)}/api/portal($|\?)"))

    page.goto(f"{host}/api/portal/status")
    expect(page.get_by_role("heading", name="Connector status")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Cerner reachability")).first).to_be_visible()
    expect(page.get_by_role("heading", name="Licence")).to_be_visible()
    shot(page, "status")

    page.goto(f"{host}/api/portal/reports/usage?days=7")
    for title in ("Visits per day by outcome", "Lobby wait distribution", "Duration distribution"):
        expect(page.get_by_role("img", name=re.compile(title)).first).to_be_visible()
    shot(page, "usage-report")

    page.goto(f"{host}/api/portal/reports/sms?days=7")
    expect(page.get_by_role("img", name=re.compile("Messages per day by delivery status"))).to_be_visible()
    expect(page.get_by_role("table", name="Messages by type and delivery status")).to_be_visible()
    shot(page, "sms-report")

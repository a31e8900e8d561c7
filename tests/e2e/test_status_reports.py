"""In Chromium: a Reports Reader opens the status page, the usage report with its charts and the SMS report
(screenshots in test-output/status-reports/, the README's images come from them)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from sandbox import config
from sandbox.entra import REPORTS_READER_UPN
from shared.storage.config import ConfigRepository
from shared.storage.messages import MessageLog
from shared.storage.usage import UsageRepository
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "status-reports"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    page.screenshot(path=SHOTS / f"{name}.jpg", type="jpeg", quality=55, full_page=False)


def a_week_of_visits_and_texts(accounts) -> None:
    """A week of settled visits and texts for the demo organization (opaque keys only), so the charts have bars."""
    repository = ConfigRepository(accounts)
    endpoint = next(e for e in repository.endpoints(config.ENTRA_TENANT_ID) if e.environment == "test")
    region, usage, log = repository.region(config.ENTRA_TENANT_ID), UsageRepository(accounts), MessageLog(accounts)
    now, department = datetime.now(UTC), f"8{secrets.randbelow(10**7):07d}"
    for day in range(1, 7):
        for slot in range(2 + day % 3):
            start = now - timedelta(days=day, hours=slot + 1)
            status = "no_show" if slot == 2 else "completed"
            fields = {"department": department, "status": status, "sms_sent": True}
            if status == "completed":
                fields |= {"lobby_wait_seconds": 60 * (1 + (day * 3 + slot) % 12),
                           "duration_seconds": 60 * (10 + (day * 7 + slot * 5) % 35)}
            usage.record(region, endpoint.id, secrets.token_hex(16), start, fields)
            for kind in ("confirmation", "reminder", "link")[: 1 + (day + slot) % 3]:
                row, sent = secrets.token_hex(16), start - timedelta(hours=2)
                log.sent(region, endpoint.id, row, kind, "sent", sent)
                log.delivered(region, endpoint.id, row, "failed" if (day + slot) % 5 == 0 else "delivered", sent, sent)


def last_run_recorded(context, host: str) -> None:
    def recorded() -> bool:
        current = context.request.get(f"{host}/api/portal/status?format=json").json()
        return all(e["last_run"] for e in current["endpoints"] if e["sms_on"])

    assert wait_until(recorded, interval=0.5), "the run was recorded"


def test_a_reports_reader_sees_the_status_the_charts_and_the_sms_report_without_scripts(sandbox, accounts,
                                                                                         new_context):
    host = sandbox.world.host_url
    a_week_of_visits_and_texts(accounts)
    ran = httpx.post(f"{host}/admin/functions/sms_notifications", json={}, timeout=10,
                     headers={"x-functions-key": sandbox.host_keys.master})
    assert ran.status_code == 202
    context = new_context(viewport={"width": 1100, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{host}/api/portal/auth/signin?login_hint={REPORTS_READER_UPN}")
    page.wait_for_url(re.compile(rf"{re.escape(host)}/api/portal($|\?)"))
    last_run_recorded(context, host)

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

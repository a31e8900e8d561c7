"""A visit belongs to the provider who launched it; sending the link refuses cross-site requests and needs a token."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest

from sandbox.seed import sandbox_settings
from shared.storage.accounts import TableAccounts
from tests.integration.launching import PRACTITIONER, launch_url, new_appointment, send_link_headers
from tests.security.conftest import every_table_row

OTHER_PRACTITIONER = "4122622"


@dataclass
class OpenVisit:
    """A provider's browser on a visit page."""

    browser: httpx.Client
    page: str
    send_url: str
    status_url: str
    mobile: str

    def send(self, headers: dict[str, str] | None = None, via: httpx.Client | None = None) -> httpx.Response:
        return (via or self.browser).post(self.send_url, headers=send_link_headers(self.page) | (headers or {}))


def open_visit(sandbox, oracle, practitioner: str, skip: int) -> OpenVisit:
    appointment, _name, mobile = new_appointment(oracle, practitioner=practitioner, skip=skip)
    browser = httpx.Client(follow_redirects=True, timeout=30)
    page = browser.get(launch_url(sandbox, oracle.create_launch(appointment, practitioner_id=practitioner)))
    assert page.status_code == 200, page.text
    host = sandbox.world.host_url
    return OpenVisit(browser, page.text, host + re.search(r'sendUrl = "([^"]+)"', page.text).group(1),
                     host + re.search(r'statusUrl = "([^"]+)"', page.text).group(1), mobile)


@pytest.fixture()
def visits(sandbox, oracle, signed_in_provider):
    """Dr Grey's visit and another provider's visit, each open in its own browser."""
    mine = open_visit(sandbox, oracle, PRACTITIONER, skip=3)
    theirs = open_visit(sandbox, oracle, OTHER_PRACTITIONER, skip=5)
    yield mine, theirs
    mine.browser.close()
    theirs.browser.close()


@pytest.fixture()
def stored(sandbox):
    """What the tables hold, to compare after an attack."""
    accounts = TableAccounts(sandbox_settings(sandbox))
    return lambda: [row for row in every_table_row(accounts) if row["table"] in ("ledger", "usage")]


def test_another_providers_session_cannot_open_my_visit_page(visits, graph, stored):
    """Attack: a provider opens another provider's visit URL with their own Cerner session."""
    mine, theirs = visits
    before_rows, before_graph = stored(), sum(graph.requests.values())
    response = theirs.browser.get(mine.send_url.rsplit("/send-link", 1)[0])
    assert response.status_code == 403 and "opened by another provider" in response.text
    assert stored() == before_rows and sum(graph.requests.values()) == before_graph


def test_another_providers_session_cannot_read_my_patients_status(visits):
    """Attack: a provider polls another provider's patient status with their own session."""
    mine, theirs = visits
    response = theirs.browser.get(mine.status_url, headers={"accept": "application/json"})
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert "state" not in response.json()


def test_another_providers_session_cannot_text_my_patient(visits, acs, stored):
    """Attack: a provider sends the link of another provider's visit with their own session and token."""
    mine, theirs = visits
    texted = len(acs.outbox(mine.mobile))
    before_rows = stored()
    response = theirs.browser.post(mine.send_url, headers=send_link_headers(theirs.page))
    assert response.status_code == 403
    assert len(acs.outbox(mine.mobile)) == texted and stored() == before_rows


def test_cross_site_origin_cannot_send_the_link(visits, acs, stored):
    """Attack: a page on another site makes the provider's browser POST send-link (Origin of that site)."""
    mine, _theirs = visits
    texted = len(acs.outbox(mine.mobile))
    before_rows = stored()
    response = mine.send({"Origin": "https://evil.example"})
    assert response.status_code == 403 and response.json()["error"] == "cross_site_request"
    assert len(acs.outbox(mine.mobile)) == texted and stored() == before_rows


def test_cross_site_fetch_metadata_cannot_send_the_link(visits, acs, stored):
    """Attack: a cross-site request without Origin, flagged by the browser's Sec-Fetch-Site: cross-site."""
    mine, _theirs = visits
    texted = len(acs.outbox(mine.mobile))
    before_rows = stored()
    response = mine.send({"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403 and response.json()["error"] == "cross_site_request"
    assert len(acs.outbox(mine.mobile)) == texted and stored() == before_rows


def test_same_site_subdomain_cannot_send_the_link(visits, acs, stored):
    """Attack: a sibling subdomain (same site, other origin) posts send-link with the provider's cookies."""
    mine, _theirs = visits
    texted, before_rows = len(acs.outbox(mine.mobile)), stored()
    response = mine.send({"Sec-Fetch-Site": "same-site", "Origin": "https://other.127.0.0.1.nip.io"})
    assert response.status_code == 403
    assert len(acs.outbox(mine.mobile)) == texted and stored() == before_rows


def test_send_link_without_the_csrf_token_is_refused(visits, acs, stored):
    """Attack: a forged POST to send-link that cannot read the page, so it carries no CSRF token."""
    mine, _theirs = visits
    texted = len(acs.outbox(mine.mobile))
    before_rows = stored()
    response = mine.browser.post(mine.send_url, headers={"accept": "application/json"})
    assert response.status_code == 403 and response.json()["error"] == "csrf_token_invalid"
    assert len(acs.outbox(mine.mobile)) == texted and stored() == before_rows


def test_csrf_token_of_another_providers_page_is_refused(visits, acs, stored):
    """Attack: a token lifted from another provider's page replayed on my visit with my session."""
    mine, theirs = visits
    texted = len(acs.outbox(mine.mobile))
    before_rows = stored()
    response = mine.browser.post(mine.send_url, headers=send_link_headers(theirs.page))
    assert response.status_code == 403 and response.json()["error"] == "csrf_token_invalid"
    assert len(acs.outbox(mine.mobile)) == texted and stored() == before_rows

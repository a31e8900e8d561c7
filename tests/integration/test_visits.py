"""Send link to patient, patient join, and the provider's live patient status, through the host and stand-ins."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import config
from sandbox.oracle.resources import PatientSpec
from shared.sms.phone import to_e164
from shared.storage.config import ConfigRepository, endpoint_id_for
from tests.integration.launching import (
    PRACTITIONER,
    launch_url,
    new_appointment,
    send_link_headers,
    todays_appointments,
)
from tests.integration.portal_client import sign_in
from tests.waiting import PATIENCE, wait_until

ADMIN = "admin@contoso-health.example"

TENANT = config.CERNER_TEST_TENANT


def patient_of(oracle, appointment_id: str) -> dict:
    resource = oracle.resource("Appointment", appointment_id, TENANT)
    reference = next(p["actor"]["reference"] for p in resource["participant"] if "Patient/" in p["actor"]["reference"])
    return oracle.resource("Patient", reference.split("/")[-1], TENANT)


def mobile_of(patient: dict) -> str | None:
    mobiles = [t["value"] for t in patient.get("telecom", []) if t.get("use") == "mobile"]
    return to_e164(mobiles[0]) if mobiles else None


def appointment_where(oracle, has_mobile: bool, nth: int = 0) -> str:
    found = [a for a in todays_appointments(oracle, PRACTITIONER) + todays_appointments(oracle, "4122622")
             if (mobile_of(patient_of(oracle, a)) is not None) == has_mobile]
    assert len(found) > nth, "the seed has patients with and without a mobile number"
    return found[nth]


def open_visit(sandbox, oracle, browser, appointment_id: str) -> tuple[str, str, str]:
    """Launch as the provider; return (page, send URL, status URL)."""
    practitioner = next(p["actor"]["reference"].split("/")[-1]
                        for p in oracle.resource("Appointment", appointment_id, TENANT)["participant"]
                        if "Practitioner/" in p["actor"]["reference"])
    page = browser.get(launch_url(sandbox, oracle.create_launch(appointment_id, practitioner_id=practitioner)))
    assert page.status_code == 200, page.text
    send = re.search(r'sendUrl = "([^"]+)"', page.text).group(1)
    status = re.search(r'statusUrl = "([^"]+)"', page.text).group(1)
    browser.headers.update(send_link_headers(page.text))  # the page's script sends its token with every POST
    return page.text, sandbox.world.host_url + send, sandbox.world.host_url + status


def guest_joins(sandbox, location: str, name: str = "Patient") -> str:
    """An anonymous patient types a name on the page the link led to; returns the lobby state they see."""
    path = urlsplit(location).path
    kind, key = path.strip("/").split("/")[:2]
    if kind == "visit":  # the virtual-appointment (B2C) page
        joined = httpx.post(f"{sandbox.world.graph_url}/visit/{key}/join", json={"displayName": name})
    else:  # the meeting's own join page, "Continue on this browser" without an account
        joined = httpx.post(f"{sandbox.world.graph_url}/meet/{key}/guest", json={"displayName": name})
    assert joined.status_code == 200, joined.text
    return joined.json()["state"]


def test_send_link_texts_the_patient_once_and_the_link_leads_to_the_lobby(sandbox, oracle, acs, graph, browser,
                                                                          signed_in_provider, join_link_mode):
    appointment, _name, mobile = new_appointment(oracle)
    before = len(acs.outbox(mobile))
    page, send, status = open_visit(sandbox, oracle, browser, appointment)
    meeting_id = re.search(r'id="join-teams" href="[^"]*/meet/([^"?&]+)', page).group(1)

    assert browser.get(status, headers={"accept": "application/json"}).json()["state"] == "waiting_for_patient"
    # As the page's script does it: same origin, with the page's CSRF token (open_visit put it in the headers).
    first = browser.post(send, headers={"Origin": sandbox.world.host_url, "Sec-Fetch-Site": "same-origin"})
    assert first.status_code == 200, first.text
    assert first.json()["sent_to"] == f"•••• {mobile[-4:]}"
    again = browser.post(send, headers={"accept": "application/json"})
    assert again.status_code == 200 and again.json()["repeated"] is True
    messages = acs.outbox(mobile)
    assert len(messages) == before + 1, "repeated clicks within a minute send once"

    link = re.search(r"(http://\S+/api/join/[A-Za-z0-9_-]+)", messages[-1].message).group(1)
    assert len(urlsplit(link).path.rsplit("/", 1)[-1]) <= 64
    assert appointment not in link
    joined = httpx.get(link, follow_redirects=False)
    assert joined.status_code == 302
    expected = {"virtual-appointment link": f"{sandbox.world.graph_url}/visit/",
                "meeting link": f"{sandbox.world.graph_url}/meet/{meeting_id}"}[join_link_mode]
    assert joined.headers["location"].startswith(expected)

    assert guest_joins(sandbox, joined.headers["location"]) == "lobby"
    teams = httpx.get(f"{sandbox.world.graph_url}/meet/{meeting_id}/state").json()
    assert [p["displayName"] for p in teams["lobby"]] == ["Patient"], "the provider's Teams shows them waiting"
    state = browser.get(status, headers={"accept": "application/json"}).json()
    assert state["state"] == "patient_waiting" and "Patient opened the link at" in state["text"]
    acs.wait_for_events(1, timeout=PATIENCE)
    assert browser.get(status, headers={"accept": "application/json"}).json()["sms"]["status"] in ("sent", "delivered")


def test_refused_virtual_appointment_link_is_asked_once_and_shown_on_the_portal(sandbox, oracle, graph, accounts):
    """Graph refusing the link costs one failed call per endpoint, not one per tap, and the portal says so."""
    refusals = "Graph refused the virtual-appointment join link"
    host_log = sandbox.state_dir / "host.log"
    graph.refuse_app_only_join_link = True
    try:
        before, logged_before = graph.requests["getVirtualAppointmentJoinWebUrl"], host_log.read_text().count(refusals)
        appointments = [new_appointment(oracle, skip=skip)[0] for skip in range(3)]
        for appointment in appointments:
            opened = httpx.get(sealed_link(sandbox, appointment), follow_redirects=False)
            assert opened.status_code == 302 and "/meet/" in opened.headers["location"]
        assert graph.requests["getVirtualAppointmentJoinWebUrl"] == before + 1

        endpoints = sign_in(sandbox, ADMIN).get("endpoints").json()["endpoints"]
        notice = next(e["patient_link"] for e in endpoints if e["base_url"] == sandbox.world.fhir_base())
        assert notice["mode"] == "meeting" and "On a phone" in notice["message"]
        assert notice["reference"] in notice["message"] and appointments[0] not in notice["message"]
        lines = [line for line in host_log.read_text().splitlines() if refusals in line]
        assert len(lines) == logged_before + 1 and f"Reference {notice['reference']}" in lines[-1], "logged once"
        assert not [a for a in appointments if a in lines[-1]], "with a reference, no identifier"
    finally:
        graph.refuse_app_only_join_link = False
        ConfigRepository(accounts).forget_join_link_choice(config.ENTRA_TENANT_ID,
                                                           endpoint_id_for(sandbox.world.fhir_base()))


def booked_for(oracle, spec: PatientSpec) -> str:
    """A visit in ten minutes with the provider, for a new patient."""
    patient = oracle.add_patient(spec, tenant=TENANT)
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=10)
    return oracle.add_appointment(patient_id=patient, practitioner_id=PRACTITIONER, start=start,
                                  end=start + timedelta(minutes=20), location_id=oracle.seeded[TENANT].locations[0])


def test_patient_without_a_mobile_number_or_email_gets_a_clear_message(sandbox, oracle, browser,
                                                                       signed_in_provider):
    appointment = booked_for(oracle, PatientSpec("Hana", "Homephone", "en", home="8165550191"))
    _page, send, _status = open_visit(sandbox, oracle, browser, appointment)
    response = browser.post(send, headers={"accept": "application/json"})
    assert response.status_code == 422
    assert "no mobile number on file" in response.json()["message"]


@pytest.fixture()
def emails_without_a_mobile(sandbox, accounts):
    """The demo's test endpoint emails patients without a textable mobile (as seeded; other tests may change it)."""
    repository = ConfigRepository(accounts)
    endpoint = repository.endpoint(config.ENTRA_TENANT_ID, endpoint_id_for(sandbox.world.fhir_base(TENANT)))
    repository.save_endpoint(config.ENTRA_TENANT_ID, endpoint.model_copy(update={"channel": "email_if_no_mobile"}),
                             "test")
    yield
    repository.save_endpoint(config.ENTRA_TENANT_ID, endpoint, "test")


def test_send_link_emails_a_patient_without_a_mobile_once_and_the_link_leads_to_the_lobby(
        sandbox, oracle, acs, browser, signed_in_provider, emails_without_a_mobile):
    address = "hugo.homeonly@example.org"
    appointment = booked_for(oracle, PatientSpec("Hugo", "Homeonly", "es", home="8165550192", email=address))
    _page, send, _status = open_visit(sandbox, oracle, browser, appointment)
    first = browser.post(send, headers={"accept": "application/json"})
    assert first.status_code == 200, first.text
    assert first.json()["sent_to"] == "h•••@e•••.org", "the page shows the address masked"
    assert first.json()["channel"] == "email"
    again = browser.post(send, headers={"accept": "application/json"})
    assert again.status_code == 200 and again.json()["repeated"] is True
    deadline = time.monotonic() + 10
    while not acs.mail.mailbox(address) and time.monotonic() < deadline:
        time.sleep(0.05)
    [email] = acs.mail.mailbox(address)
    assert email.subject == "El enlace de su cita virtual"
    assert acs.outbox(to_e164("8165550192")) == []
    link = re.search(r"(http://\S+/api/join/[A-Za-z0-9_-]+)", email.plain_text).group(1)
    joined = httpx.get(link, follow_redirects=False)
    assert joined.status_code == 302
    assert joined.headers["location"].startswith(f"{sandbox.world.graph_url}/visit/")


def test_sms_throttling_is_a_clear_message(sandbox, oracle, acs, browser, signed_in_provider):
    _page, send, _status = open_visit(sandbox, oracle, browser, new_appointment(oracle)[0])
    acs.fail_next(429)
    response = browser.post(send, headers={"accept": "application/json"})
    assert response.status_code == 429
    assert "Too many text messages" in response.json()["message"]
    retry = browser.post(send, headers={"accept": "application/json"})
    assert retry.status_code == 200 and retry.json()["repeated"] is False, "a throttled click can be retried at once"


def test_patient_who_replied_stop_is_not_texted(sandbox, oracle, acs, browser, signed_in_provider):
    appointment, _name, mobile = new_appointment(oracle, skip=1)
    before = len(acs.outbox(mobile))
    httpx.post(f"{sandbox.world.acs_url}/_sandbox/reply", json={"from": mobile, "to": "+18005550100",
                                                                 "message": "STOP"}).raise_for_status()

    def stop_handled() -> bool:  # this reply's event, not just any event (a delivery report may come first)
        return any(e["eventType"] == "Microsoft.Communication.SMSReceived" and e["data"]["From"] == mobile
                   and e["data"]["Message"] == "STOP" for e in list(acs.events_sent))

    assert wait_until(stop_handled), "the host handled the STOP reply"
    _page, send, _status = open_visit(sandbox, oracle, browser, appointment)
    response = browser.post(send, headers={"accept": "application/json"})
    assert response.status_code == 409
    assert "opted out" in response.json()["message"]
    assert len(acs.outbox(mobile)) == before
    httpx.post(f"{sandbox.world.acs_url}/_sandbox/reply", json={"from": mobile, "to": "+18005550100",
                                                                 "message": "START"}).raise_for_status()


def test_status_without_the_provider_session_is_refused(sandbox, oracle, browser, signed_in_provider):
    _page, _send, status = open_visit(sandbox, oracle, browser, appointment_where(oracle, has_mobile=True))
    response = httpx.get(status, headers={"accept": "application/json"})
    assert response.status_code == 401
    # The Cerner session (570 s) ends while the page keeps polling: still a 401, never a 500.
    session = dict(browser.cookies)["ehr_session"]
    assert browser.get(status, headers={"accept": "application/json"}).status_code == 200, "the genuine session works"
    from sandbox.seed import sandbox_settings
    from shared.tokens import Sealer

    sealer = Sealer(sandbox_settings(sandbox))
    expired = sealer.seal_json(sealer.open_json(session, "ehr-session"), -1, "ehr-session")
    ended = httpx.get(status, headers={"accept": "application/json"}, cookies={"ehr_session": expired})
    assert ended.status_code == 401 and "session has ended" in ended.json()["message"]


@pytest.mark.parametrize("path", ["not-a-token", "A" * 64, "A" * 200, "..%2F..%2Fetc", "%00", "x/y/z"])
def test_bad_join_links_get_a_friendly_page(sandbox, path):
    response = httpx.get(f"{sandbox.world.host_url}/api/join/{path}", headers={"accept-language": "es-MX,es;q=0.9"})
    assert response.status_code == 404, "a link that does not open is not found (410 is only for genuine links)"
    assert "Este enlace" in response.text and "Traceback" not in response.text


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One client (one TLS setup, kept-alive connections) for many requests."""
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        yield client


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=120))
def test_random_join_paths_never_give_a_5xx(sandbox, client, path):
    response = client.get(f"{sandbox.world.host_url}/api/join/{quote(path, safe='/')}")
    assert response.status_code == 404, (path, response.status_code)


def sealed_link(sandbox, appointment_id: str, expires_in: timedelta = timedelta(hours=6)) -> str:
    from sandbox.seed import sandbox_settings
    from shared.storage.config import endpoint_id_for
    from shared.tokens import Sealer

    token = Sealer(sandbox_settings(sandbox)).seal_link(
        endpoint_id_for(sandbox.world.fhir_base()), appointment_id, datetime.now(UTC) + expires_in)
    return f"{sandbox.world.host_url}/api/join/{token}"


def language_of(oracle, appointment_id: str) -> str:
    codes = [c["code"] for comm in patient_of(oracle, appointment_id).get("communication", [])
             for c in comm["language"]["coding"] if c.get("system") == "urn:ietf:bcp:47"]
    return codes[0] if codes else "en"


def test_too_early_link_says_when_to_come_back_in_the_patients_language(sandbox, oracle):
    tomorrow = oracle.seeded[TENANT].tomorrow[0]
    response = httpx.get(sealed_link(sandbox, tomorrow, timedelta(days=2)), follow_redirects=False)
    assert response.status_code == 200
    expected = {"en": "Come back at", "es": "Vuelva a las", "pt-BR": "Volte"}[language_of(oracle, tomorrow)]
    assert expected in response.text


def test_cancelled_appointment_link_gets_a_friendly_page(sandbox, oracle):
    cancelled = oracle.seeded[TENANT].cancelled[0]
    response = httpx.get(sealed_link(sandbox, cancelled), follow_redirects=False)
    assert response.status_code == 410
    expected = {"en": "was cancelled", "es": "fue cancelada", "pt-BR": "foi cancelada"}[language_of(oracle, cancelled)]
    assert expected in response.text


EXPIRED = {"en": "This link has expired", "es": "Este enlace ha caducado", "pt-BR": "Este link expirou"}
EARLY = {"en": "Come back at", "es": "Vuelva a las", "pt-BR": "Volte"}


def test_a_link_to_an_appointment_that_ended_gets_the_expired_page_in_the_patients_language(sandbox, oracle):
    ended, _name, _mobile = new_appointment(oracle, minutes_from_now=-5 * 60, skip=2)
    response = httpx.get(sealed_link(sandbox, ended, -timedelta(minutes=5)),
                         headers={"accept-language": "pt-BR,pt;q=0.9,en;q=0.5"})
    assert response.status_code == 410 and EXPIRED[language_of(oracle, ended)] in response.text


def test_a_fulfilled_appointments_link_says_it_has_ended_in_the_patients_language(sandbox, oracle):
    appointment, _name, _mobile = new_appointment(oracle, minutes_from_now=5, skip=4)
    oracle.set_status(appointment, "fulfilled")
    response = httpx.get(sealed_link(sandbox, appointment), follow_redirects=False)
    assert response.status_code == 410 and EXPIRED[language_of(oracle, appointment)] in response.text


def test_an_old_link_follows_its_appointment_when_it_moves_later(sandbox, oracle):
    appointment, _name, _mobile = new_appointment(oracle, minutes_from_now=-4 * 60, skip=6)
    link = sealed_link(sandbox, appointment, -timedelta(minutes=30))  # sealed for the old time: expired
    later = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
    oracle.reschedule(appointment, later, later + timedelta(minutes=20))
    response = httpx.get(link, follow_redirects=False)
    assert response.status_code == 200 and EARLY[language_of(oracle, appointment)] in response.text


def test_a_link_to_an_appointment_moved_earlier_that_has_ended_gets_the_expired_page(sandbox, oracle):
    appointment, _name, _mobile = new_appointment(oracle, minutes_from_now=60, skip=7)
    link = sealed_link(sandbox, appointment)  # still valid for the old time
    earlier = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=5)
    oracle.reschedule(appointment, earlier, earlier + timedelta(minutes=20))
    response = httpx.get(link, follow_redirects=False)
    assert response.status_code == 410 and EXPIRED[language_of(oracle, appointment)] in response.text


def test_link_to_an_appointment_cerner_does_not_have_says_the_link_is_not_valid(sandbox):
    """Found by the fuzzer: this was a 503 "try again in a few minutes", which never helps."""
    response = httpx.get(sealed_link(sandbox, "98765432109876"), headers={"accept-language": "en"})
    assert response.status_code == 404 and "This link isn&#39;t valid" in response.text

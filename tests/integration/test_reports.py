"""Usage report end to end: a visit held in Teams, the hourly reconcile run through the host, the report as read
by a Reports Reader (JSON, CSV, page), and nobody else."""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from sandbox import config
from sandbox.entra import NO_ROLE_UPN, OTHER_ADMIN_UPN, REPORTS_READER_UPN
from shared.sms.phone import to_e164
from tests.integration.launching import PROVIDER, launch_url
from tests.integration.portal_client import JSON, Portal, sign_in
from tests.waiting import wait_until

TENANT = config.CERNER_TEST_TENANT
# Not the practitioner whose first launch test_launch expects to sign in to Microsoft.
PRACTITIONER = "4122622"
LOBBY_WAIT = timedelta(minutes=4)
TOGETHER = timedelta(minutes=15)


@dataclass
class Clinic:
    """What the flow left behind: the department used only by this test, and everything that identifies the patient."""

    department: str
    secrets: set[str]


def patient_secrets(oracle, patient_id: str, appointment_ids: list[str]) -> set[str]:
    patient = oracle.resource("Patient", patient_id, TENANT)
    values = {patient_id, patient["birthDate"], *appointment_ids}
    for name in patient["name"]:
        values.update([name.get("text", ""), name.get("family", ""), *name.get("given", [])])
    for telecom in patient.get("telecom", []):
        values.update([re.sub(r"\D", "", telecom["value"]), to_e164(telecom["value"]) or ""])
    return {v for v in values if len(v) >= 4}


def book(oracle, patient_id: str, department: str, start: datetime, length: timedelta) -> str:
    return oracle.add_appointment(patient_id=patient_id, practitioner_id=PRACTITIONER, location_id=department,
                                  start=start, end=start + length, tenant=TENANT)


def launch(sandbox, oracle, browser, appointment_id: str) -> str:
    """The provider opens the visit from PowerChart; returns the page."""
    page = browser.get(launch_url(sandbox, oracle.create_launch(appointment_id, practitioner_id=PRACTITIONER)))
    assert page.status_code == 200, page.text[:500]
    return page.text


def hold_the_visit(graph, meeting_id: str, visit_token: str, typed_name: str) -> None:
    """Patient waits in the lobby, the provider joins and admits them after 4 minutes; 15 minutes later both leave.
    The patient's network is bad (their streams cross Microsoft's poor-call limits)."""
    graph.poor_network(meeting_id, "patient")
    provider = next(a["identity"]["user"]["id"] for a in graph.meeting(meeting_id).resource["participants"]["attendees"]
                    if a["role"] == "coorganizer")
    real_clock = graph.clock
    try:
        patient = graph.join_as_visitor(visit_token, typed_name)
        graph.join_as_user(meeting_id, provider)
        graph.clock = lambda: real_clock() + LOBBY_WAIT.total_seconds()
        graph.admit(meeting_id, patient.participant_id, provider)
        graph.clock = lambda: real_clock() + (LOBBY_WAIT + TOGETHER).total_seconds()
        graph.leave(meeting_id, patient.participant_id)
        graph.leave_as_user(meeting_id, provider)  # the last staff member leaving ends the meeting
    finally:
        graph.clock = real_clock


@pytest.fixture(scope="module")
def clinic(sandbox) -> Clinic:
    """A completed visit (SMS link, lobby, admitted, 15 minutes together, a poor call) and a no-show, then the hourly
    reconcile. Graph pages call records and sessions one at a time, so every nextLink must be followed."""
    oracle, graph, entra = (sandbox.standins[name] for name in ("oracle", "graph", "entra"))
    pages = graph.call_records_page_size, graph.sessions_page_size
    graph.call_records_page_size = graph.sessions_page_size = 1
    department = oracle.add_location("Report Test Clinic", location_id=f"9{secrets.randbelow(10**7):07d}",
                                     tenant=TENANT)
    patient_id = oracle.seeded[TENANT].patients[2]  # has a US mobile number
    now = datetime.now(UTC)
    completed = book(oracle, patient_id, department, now - timedelta(minutes=50), timedelta(minutes=30))
    no_show = book(oracle, patient_id, department, now - timedelta(hours=4, minutes=30), timedelta(minutes=30))
    entra.auto_sign_in_upn = PROVIDER
    try:
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            page = launch(sandbox, oracle, browser, completed)
            meeting_id = re.search(r"/meet/([A-Za-z0-9_-]+)", page).group(1)
            send = re.search(r'sendUrl = "([^"]+)"', page).group(1)
            sent = browser.post(sandbox.world.host_url + send, headers=JSON)
            assert sent.status_code == 200, sent.text
            launch(sandbox, oracle, browser, no_show)  # the provider opens it; nobody joins
    finally:
        entra.auto_sign_in_upn = None
    mobile = to_e164(next(t["value"] for t in oracle.resource("Patient", patient_id, TENANT)["telecom"]
                          if t.get("use") == "mobile"))
    link = re.search(r"(http://\S+/api/join/[A-Za-z0-9_-]+)", sandbox.standins["acs"].outbox(mobile)[-1].message)
    lobby = httpx.get(link.group(1), follow_redirects=False)
    assert lobby.status_code == 302, lobby.text[:300]
    typed_name = oracle.resource("Patient", patient_id, TENANT)["name"][0]["text"]
    hold_the_visit(graph, meeting_id, urlsplit(lobby.headers["location"]).path.rsplit("/", 1)[-1], typed_name)

    ran = httpx.post(f"{sandbox.world.host_url}/admin/functions/usage_reconcile", json={})
    assert ran.status_code == 202
    yield Clinic(department, patient_secrets(oracle, patient_id, [completed, no_show]) | {typed_name})
    graph.call_records_page_size, graph.sessions_page_size = pages


@pytest.fixture(scope="module")
def reader(sandbox) -> Portal:
    portal = sign_in(sandbox, REPORTS_READER_UPN)
    yield portal
    portal.http.close()


def clinic_visits(reader: Portal, clinic: Clinic) -> list[dict]:
    """The clinic's visits in the JSON report."""
    response = reader.http.get("/api/reports/usage", params={"days": 7, "format": "json"})
    assert response.status_code == 200, response.text
    return [v for v in response.json()["visits"] if v["department"] == clinic.department]


def settled_visits(reader: Portal, clinic: Clinic) -> list[dict]:
    """The clinic's visits in the JSON report, once the reconcile run has settled both."""
    def settled() -> list[dict]:
        visits = clinic_visits(reader, clinic)
        done = len(visits) == 2 and all(v["status"] != "pending" for v in visits)
        rated = all(v["poor_call"] is not None for v in visits if v["status"] == "completed")
        return visits if done and rated else []

    return wait_until(settled, interval=0.3) or clinic_visits(reader, clinic)


def test_reports_reader_sees_a_completed_visit_with_lobby_wait_and_duration_and_a_no_show(reader, clinic):
    visits = settled_visits(reader, clinic)
    assert sorted(v["status"] for v in visits) == ["completed", "no_show"], visits
    done = next(v for v in visits if v["status"] == "completed")
    missed = next(v for v in visits if v["status"] == "no_show")
    # Lobby wait: from opening the SMS link to being admitted (4 minutes later in Teams' clock).
    assert LOBBY_WAIT.total_seconds() <= done["lobby_wait_seconds"] < LOBBY_WAIT.total_seconds() + 60
    assert TOGETHER.total_seconds() <= done["duration_seconds"] < TOGETHER.total_seconds() + 60
    assert done["sms_sent"] is True and done["environment"] == "test" and done["time_zone"] == "America/Chicago"
    assert missed["lobby_wait_seconds"] is None and missed["duration_seconds"] is None and not missed["sms_sent"]
    report = reader.http.get("/api/reports/usage?days=7", headers=JSON).json()
    assert report["totals"]["completed"] >= 1 and report["totals"]["no_show"] >= 1


def test_a_poor_call_is_flagged_with_the_patients_worst_stream_and_counted_by_day_and_department(reader, clinic):
    done = next(v for v in settled_visits(reader, clinic) if v["status"] == "completed")
    assert done["poor_call"] is True
    # The stand-in's poor network: 52 ms jitter, 14 % loss, 620 ms round trip; staff stayed on a good one.
    assert (done["patient_jitter_ms"], done["patient_packet_loss_percent"], done["patient_round_trip_ms"]) == (
        52, 14.0, 620)
    assert (done["staff_jitter_ms"], done["staff_packet_loss_percent"], done["staff_round_trip_ms"]) == (4, 0.2, 45)
    report = reader.http.get("/api/reports/usage", params={"days": 7, "format": "json"}).json()
    shares = [s for s in report["poor_calls_by_day"] if s["department"] == clinic.department]
    assert [(s["calls"], s["poor"], s["poor_percent"]) for s in shares] == [(1, 1, 100)]
    assert report["totals"]["poor_calls"] >= 1
    page = " ".join(reader.http.get("/api/reports/usage", params={"days": 7}).text.split())
    assert "Poor calls by day and department" in page and "Patient: jitter 52 ms, loss 14 %, round trip 620 ms" in page


def test_csv_download_has_a_filename_and_the_same_visits(reader, clinic):
    settled_visits(reader, clinic)
    before = datetime.now(UTC).strftime("%Y-%m-%d")
    response = reader.http.get("/api/reports/usage", params={"days": 30, "format": "csv"})
    after = datetime.now(UTC).strftime("%Y-%m-%d")  # the download may straddle midnight
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] in {
        f'attachment; filename="virtual-visits-usage-30-days-{day}.csv"' for day in (before, after)}
    table = csv.DictReader(io.StringIO(response.text.lstrip("\ufeff")))
    rows = [r for r in table if r["Department ID"] == clinic.department]
    assert sorted(r["Status"] for r in rows) == ["Completed", "No show"]
    done = next(r for r in rows if r["Status"] == "Completed")
    assert done["Lobby wait (h:mm:ss)"].startswith("0:04:") and done["Duration (h:mm:ss)"].startswith("0:15:")
    assert done["SMS sent"] == "Yes"
    assert (done["Call quality"], done["Patient packet loss (%)"], done["Patient round trip (ms)"]) == (
        "Poor", "14", "620")
    assert next(r for r in rows if r["Status"] == "No show")["Call quality"] == ""


def test_page_lists_the_ranges_and_the_portal_in_an_accessible_table(reader, clinic):
    settled_visits(reader, clinic)
    page = reader.http.get("/api/reports/usage", params={"days": 90})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<caption" in page.text and '<th scope="col">Lobby wait</th>' in page.text
    assert 'href="/api/portal/reports/usage?days=90" aria-current="page"' in page.text
    assert 'href="/api/portal/reports/usage?days=7"' in page.text and 'href="/api/portal"' in page.text
    assert "script-src" not in page.headers["content-security-policy"] and "<script" not in page.text


def test_the_report_holds_nothing_that_identifies_the_patient(reader, clinic):
    settled_visits(reader, clinic)
    for output in ("json", "csv", "html"):
        text = reader.http.get("/api/reports/usage", params={"days": 7, "format": output}).text
        assert not [value for value in clinic.secrets if value in text], output


def test_only_7_30_or_90_days(reader):
    response = reader.http.get("/api/reports/usage", params={"days": 14, "format": "json"})
    assert response.status_code == 400 and "7, 30 or 90" in response.json()["message"]


def test_without_a_session_the_api_says_401_and_the_page_goes_to_the_portal_sign_in(sandbox):
    with httpx.Client(base_url=sandbox.world.host_url, timeout=30) as http:
        api = http.get("/api/reports/usage", params={"format": "json"}, follow_redirects=True)
        moved = http.get("/api/reports/usage", params={"days": 7})
        page = http.get(moved.headers["location"])
    assert api.status_code == 401 and api.json()["error"] == "not_signed_in"
    assert moved.status_code == 302 and moved.headers["location"] == "/api/portal/reports/usage?days=7"
    assert page.status_code == 302 and page.headers["location"] == "/api/portal/auth/signin"


def test_an_account_without_an_admin_role_gets_a_page_naming_the_roles_needed(sandbox, entra):
    entra.auto_sign_in_upn = NO_ROLE_UPN
    try:
        with httpx.Client(base_url=sandbox.world.host_url, follow_redirects=True, timeout=30) as http:
            page = http.get("/api/reports/usage")
            api = http.get("/api/reports/usage", params={"format": "json"})
    finally:
        entra.auto_sign_in_upn = None
    assert page.status_code == 403
    assert all(role in page.text for role in ("Reports Reader", "Global Reader", "Global Administrator"))
    assert api.status_code == 401


def test_report_is_scoped_to_the_signed_in_organization(sandbox, clinic):
    other = sign_in(sandbox, OTHER_ADMIN_UPN)
    try:
        response = other.http.get("/api/reports/usage", params={"days": 7, "format": "json"})
    finally:
        other.http.close()
    assert response.status_code == 200
    assert not [v for v in response.json()["visits"] if v["department"] == clinic.department]


def test_usage_rows_with_meeting_ids_and_computed_times_hold_no_patient_data(accounts, clinic, reader):
    settled_visits(reader, clinic)
    rows = list(accounts.table("usage", "americas").list_entities())
    assert any(row.get("meeting_id") and row.get("duration_seconds") for row in rows)
    texts = [" ".join(str(value) for value in row.values()) for row in rows]
    assert not [value for value in clinic.secrets for text in texts if value in text]

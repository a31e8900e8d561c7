"""The status page end to end: the reminder job run through the host, Cerner failing, a lapsed toll-free
verification and a revoked Teams access policy, as a Reports Reader sees them (JSON and page)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from sandbox.entra import ADMIN_UPN, NO_ROLE_UPN, ORGANIZER_OID, REPORTS_READER_UPN
from sandbox.seed import DEMO_SMS_NUMBER
from shared.portal.sms import NumberRecord, NumberRepository
from shared.storage.config import ConfigRepository, JoinLinkChoice
from tests.integration.portal_client import JSON, Portal, sign_in
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def reader(sandbox) -> Portal:
    portal = sign_in(sandbox, REPORTS_READER_UPN)
    yield portal
    portal.http.close()


def status(reader: Portal) -> dict:
    response = reader.http.get("/api/portal/status", params={"format": "json"})
    assert response.status_code == 200, response.text[:500]
    return response.json()


def run_job_and_wait(sandbox, reader: Portal, after: datetime) -> dict:
    """Fire the reminder timer through the host and wait until every SMS endpoint shows a run newer than `after`."""
    ran = httpx.post(f"{sandbox.world.host_url}/admin/functions/sms_notifications", json={}, timeout=10,
                     headers={"x-functions-key": sandbox.host_keys.master})
    assert ran.status_code == 202

    def done() -> dict | None:
        current = status(reader)
        runs = [e["last_run"] for e in current["endpoints"] if e["sms_on"]]
        return current if runs and all(r and datetime.fromisoformat(r["run_at"]) > after for r in runs) else None

    current = wait_until(done, interval=0.3)
    assert current, "the run was recorded for every SMS endpoint"
    return current


def test_a_run_that_could_not_reach_cerner_shows_red_with_its_error_code_then_green_again(sandbox, reader, oracle):
    before = datetime.now(UTC)
    with oracle.lock:
        oracle.faults.clear()
    oracle.fail_next("Appointment", status=503, count=1000)
    try:
        failed = run_job_and_wait(sandbox, reader, before)
    finally:
        with oracle.lock:
            oracle.faults.clear()
    endpoint = next(e for e in failed["endpoints"] if e["sms_on"])
    assert endpoint["last_run"]["outcome"] == "failed" and endpoint["last_run"]["error_codes"], endpoint
    assert not endpoint["last_run_check"]["ok"] and "Cerner" in endpoint["last_run_check"]["what_to_do"]
    assert endpoint["next_run"] and datetime.fromisoformat(endpoint["next_run"]) > before
    assert not failed["ok"]
    assert any(p["item"].endswith("Last reminder run") and p["what_to_do"] for p in failed["problems"])
    page = reader.http.get("/api/portal/status")
    assert page.status_code == 200 and "Needs attention" in page.text
    assert endpoint["last_run"]["error_codes"][0] in page.text and "<script" not in page.text

    recovered = run_job_and_wait(sandbox, reader, datetime.fromisoformat(endpoint["last_run"]["run_at"]))
    again = next(e for e in recovered["endpoints"] if e["id"] == endpoint["id"])
    assert again["last_run"]["outcome"] == "ok" and again["last_run_check"]["ok"], again
    assert again["cerner"]["ok"] and again["smart"]["ok"]


def test_a_lapsed_toll_free_verification_is_red_with_the_steps_to_renew_it(sandbox, reader, accounts):
    numbers = NumberRepository(accounts)
    tenant = reader.me["tenant_id"]
    record = NumberRecord(id=uuid.uuid4().hex[:16], country="US", status="provisioned", number=DEMO_SMS_NUMBER,
                          verification="verified", updated_at=datetime.now(UTC))
    numbers.save(tenant, record)
    admin = sign_in(sandbox, ADMIN_UPN)
    try:
        verified = next(n for n in status(reader)["numbers"] if n["number"] == DEMO_SMS_NUMBER)
        assert verified["verification"]["ok"] and verified["verification_state"] == "verified"
        lapsed = admin.send("PUT", f"sms/numbers/{record.id}", {"verification": "unverified"})
        assert lapsed.status_code == 200, lapsed.text
        current = status(reader)
    finally:
        admin.http.close()
        numbers.table.delete_entity(tenant, f"number:{record.id}")
    number = next(n for n in current["numbers"] if n["number"] == DEMO_SMS_NUMBER)
    assert number["verification_state"] == "unverified" and not number["verification"]["ok"]
    assert "toll-free verification" in number["verification"]["what_to_do"]
    assert any(p["item"] == f"{DEMO_SMS_NUMBER}: toll-free verification" for p in current["problems"])
    assert {"sent_24h", "delivery_rate_24h", "sent_7d", "delivery_rate_7d", "opt_outs"} <= number.keys()


def test_a_revoked_teams_access_policy_is_found_by_a_dry_run_that_creates_no_meeting(reader, graph):
    meetings_before = len(graph.meetings)
    graph.revoke_access_policy(ORGANIZER_OID)
    try:
        current = status(reader)
    finally:
        graph.grant_access_policy(ORGANIZER_OID)
    endpoint = next(e for e in current["endpoints"] if e["sms_on"])
    assert not endpoint["teams_access"]["ok"]
    assert "Grant-CsApplicationAccessPolicy" in endpoint["teams_access"]["what_to_do"]
    assert len(graph.meetings) == meetings_before
    assert next(e for e in status(reader)["endpoints"] if e["id"] == endpoint["id"])["teams_access"]["ok"]


def test_without_a_session_json_is_401_and_the_page_goes_to_sign_in_and_no_role_is_refused(sandbox, entra):
    with httpx.Client(base_url=sandbox.world.host_url, timeout=30) as http:
        api = http.get("/api/portal/status", headers=JSON)
        page = http.get("/api/portal/status")
    assert api.status_code == 401 and api.json()["error"] == "not_signed_in"
    assert page.status_code == 302 and page.headers["location"] == "/api/portal/auth/signin"
    entra.auto_sign_in_upn = NO_ROLE_UPN
    try:
        with httpx.Client(base_url=sandbox.world.host_url, follow_redirects=True, timeout=30) as http:
            refused = http.get("/api/portal/status")
    finally:
        entra.auto_sign_in_upn = None
    assert refused.status_code == 403 and "Reports Reader" in refused.text


def test_the_meeting_link_fallback_after_graph_refused_the_virtual_appointment_link_shows_red(reader, accounts):
    config = ConfigRepository(accounts)
    tenant = reader.me["tenant_id"]
    endpoint = next(e for e in status(reader)["endpoints"] if e["sms_on"])
    assert endpoint["patient_link"]["ok"], endpoint["patient_link"]
    config.save_join_link_choice(tenant, endpoint["id"], JoinLinkChoice(
        reason="Graph answered HTTP 403", reference="abc123def456", decided_at=datetime.now(UTC)))
    try:
        shown = next(e for e in status(reader)["endpoints"] if e["id"] == endpoint["id"])
    finally:
        config.forget_join_link_choice(tenant, endpoint["id"])
    assert not shown["patient_link"]["ok"] and "abc123def456" in shown["patient_link"]["detail"]
    assert "VirtualAppointment.Read.All" in shown["patient_link"]["what_to_do"]

"""Provider launch through the local host and the stand-ins, with a real HTTP client following redirects."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sandbox import config
from sandbox.oracle.resources import PatientSpec
from tests.integration.launching import (
    OTHER_PRACTITIONER,
    PRACTITIONER,
    PROVIDER,
    launch_at,
    launch_url,
    linked_ehr_users,
    patient_name,
    todays_appointments,
)


def ehr_user_rows(accounts, region: str) -> list[dict]:
    return [dict(r) for r in accounts.table("ehrusers", region).list_entities()]


def test_first_launch_signs_in_once_then_goes_straight_through(sandbox, oracle, entra, graph, accounts, browser,
                                                               signed_in_provider):
    first, second = todays_appointments(oracle)[:2]
    for row in ehr_user_rows(accounts, "americas"):  # earlier tests may have linked this provider already
        if PRACTITIONER in row["RowKey"]:
            accounts.table("ehrusers", "americas").delete_entity(row["PartitionKey"], row["RowKey"])
    sign_ins_before = len(entra.sign_ins)

    page = browser.get(launch_url(sandbox, oracle.create_launch(first)))
    assert page.status_code == 200, page.text
    assert patient_name(oracle, first) in page.text
    assert "Join in Teams" in page.text and "Join in browser" in page.text
    assert len(entra.sign_ins) == sign_ins_before + 1
    rows = ehr_user_rows(accounts, "americas")
    assert len([r for r in rows if PRACTITIONER in r["RowKey"]]) == 1
    assert ehr_user_rows(accounts, "emea") == [] and ehr_user_rows(accounts, "apac") == []

    again = browser.get(launch_url(sandbox, oracle.create_launch(first)))
    other = browser.get(launch_url(sandbox, oracle.create_launch(second)))
    assert again.status_code == other.status_code == 200
    assert len(entra.sign_ins) == sign_ins_before + 1, "a linked provider is not asked to sign in again"
    assert len([r for r in ehr_user_rows(accounts, "americas") if PRACTITIONER in r["RowKey"]]) == 1

    join_urls = [re.search(r'id="join-teams" href="([^"]+)"', p.text).group(1) for p in (page, again, other)]
    assert join_urls[0] == join_urls[1], "the same appointment opens the same meeting"
    assert join_urls[0] != join_urls[2], "another appointment gets another meeting"


def test_meeting_is_neutral_with_lobby_and_provider_as_co_organizer(sandbox, oracle, entra, graph, browser,
                                                                   signed_in_provider):
    appointment = todays_appointments(oracle)[2]
    page = browser.get(launch_url(sandbox, oracle.create_launch(appointment)))
    assert page.status_code == 200
    assert "script-src 'nonce-" in page.headers["content-security-policy"], "only the page's own script may run"
    meeting_id = re.search(r'id="join-teams" href="[^"]*/meet/([^"?&]+)', page.text).group(1)
    meeting = graph.meeting(meeting_id).to_graph(sandbox.world.graph_url)
    assert meeting["subject"] == "Virtual appointment"
    assert meeting["lobbyBypassSettings"]["scope"] == "organization"
    assert meeting["allowMeetingChat"] == "limited"
    provider_oid = entra.user_by_upn(PROVIDER).oid
    roles = {a["identity"]["user"]["id"]: a["role"] for a in meeting["participants"]["attendees"]}
    assert roles.get(provider_oid) == "coorganizer"
    assert patient_name(oracle, appointment) not in str(meeting)
    assert appointment not in meeting["externalId"]


def test_launch_without_appointment_context_finds_todays_appointment(sandbox, oracle, browser, signed_in_provider):
    appointment = todays_appointments(oracle)[0]
    resource = oracle.resource("Appointment", appointment, config.CERNER_TEST_TENANT)
    patient = next(p["actor"]["reference"].split("/")[-1] for p in resource["participant"]
                   if "Patient/" in p["actor"]["reference"])
    launch = oracle.create_launch(None, patient_id=patient, practitioner_id=PRACTITIONER)
    page = browser.get(launch_url(sandbox, launch))
    assert page.status_code == 200, page.text
    assert patient_name(oracle, appointment) in page.text


def test_warm_launch_makes_at_most_four_outbound_calls(sandbox, oracle, graph, browser, signed_in_provider):
    appointment = todays_appointments(oracle)[0]
    browser.get(launch_url(sandbox, oracle.create_launch(appointment)))  # warm: linked, discovery and meeting known
    before_oracle, before_graph = sum(oracle.request_counts.values()), sum(graph.requests.values())
    page = browser.get(launch_url(sandbox, oracle.create_launch(appointment)))
    assert page.status_code == 200
    calls = (sum(oracle.request_counts.values()) - before_oracle) + (sum(graph.requests.values()) - before_graph)
    # authorize is the browser's own hop, not an outbound call of ours
    assert calls - 1 <= 4


# Failures a provider can meet: each its own page and status, with a reference id, never a 500 -------------------


def assert_friendly(response: httpx.Response, status: int, *phrases: str) -> None:
    assert response.status_code == status, response.text
    assert "Reference:" in response.text
    assert "Traceback" not in response.text and "Exception" not in response.text
    for phrase in phrases:
        assert phrase in response.text


def test_unconfigured_iss_gets_a_clear_page(sandbox, oracle, browser):
    response = browser.get(launch_url(sandbox, "x", iss="https://fhir-ehr.cerner.com/r4/not-ours"))
    assert_friendly(response, 403, "This Cerner environment is not configured")


def test_private_or_other_host_iss_is_refused_without_any_outbound_call(sandbox, oracle, browser):
    before = sum(oracle.request_counts.values())
    for iss in ("https://169.254.169.254/latest/meta-data", "https://127.0.0.1:22/r4/x", "http://localhost:8441/r4/x"):
        assert_friendly(browser.get(launch_url(sandbox, "x", iss=iss)), 403, "not configured")
    assert sum(oracle.request_counts.values()) == before


def test_environment_mismatch_is_named(sandbox, oracle, browser):
    response = browser.get(launch_url(sandbox, "x", environment="production"))
    assert_friendly(response, 409, "registered as test", "production")
    response = browser.get(launch_url(sandbox, "x", iss=sandbox.world.fhir_base(config.CERNER_PROD_TENANT),
                                      environment="test"))
    assert_friendly(response, 409, "registered as production")


def test_missing_launch_parameters_are_a_400_page(sandbox, browser):
    assert_friendly(browser.get(f"{sandbox.world.host_url}/api/launch/provider"), 400, "launch link")
    assert_friendly(browser.get(f"{sandbox.world.host_url}/api/launch/provider?iss=nonsense&launch=x"), 400)


def test_callback_without_the_launch_cookie_is_refused(sandbox, browser):
    response = browser.get(f"{sandbox.world.host_url}/api/launch/callback?code=abc&state=def")
    assert_friendly(response, 400, "did not start in this browser")


def test_state_from_another_browser_is_refused(sandbox, oracle, signed_in_provider):
    with httpx.Client(follow_redirects=False) as victim, httpx.Client(follow_redirects=False) as attacker:
        start = attacker.get(launch_url(sandbox, oracle.create_launch(todays_appointments(oracle)[0])))
        authorize = httpx.get(start.headers["location"], follow_redirects=False)
        callback = authorize.headers["location"]
        victim.get(launch_url(sandbox, oracle.create_launch(todays_appointments(oracle)[1])))
        response = victim.get(callback, headers={"accept": "text/html"})
        assert_friendly(response, 400, "did not start in this browser")


def test_launch_replay_is_refused_by_cerner(sandbox, oracle, browser, signed_in_provider):
    launch = oracle.create_launch(todays_appointments(oracle)[0])
    assert browser.get(launch_url(sandbox, launch)).status_code == 200
    response = browser.get(launch_url(sandbox, launch))
    assert_friendly(response, 403, "Cerner refused the launch")


def test_cerner_error_answer_gets_its_own_page(sandbox, oracle, browser):
    oracle.deny_next_authorization = True
    response = browser.get(launch_url(sandbox, oracle.create_launch(todays_appointments(oracle)[0])))
    assert_friendly(response, 403, "Cerner refused the launch", "access_denied")


def test_cancelled_appointment_gets_its_own_page(sandbox, oracle, browser, signed_in_provider):
    cancelled = oracle.seeded[config.CERNER_TEST_TENANT].cancelled[0]
    response = browser.get(launch_url(sandbox, oracle.create_launch(cancelled)))
    assert_friendly(response, 410, "cancelled")


def test_missing_teams_access_policy_tells_provider_and_admin_what_to_do(sandbox, oracle, graph, browser,
                                                                        signed_in_provider):
    organizer = next(iter(graph.access_policy_oids))
    graph.revoke_access_policy(organizer)
    try:
        response = browser.get(launch_url(sandbox, oracle.create_launch(todays_appointments(oracle)[0])))
    finally:
        graph.grant_access_policy(organizer)
    assert_friendly(response, 403, "Contact your administrator", "Grant-CsApplicationAccessPolicy")


def test_slow_cerner_gives_a_timeout_page_not_a_500(sandbox, oracle, browser, signed_in_provider):
    appointment = todays_appointments(oracle)[0]
    browser.get(launch_url(sandbox, oracle.create_launch(appointment)))
    oracle.delay_next(f"/Appointment/{appointment}", seconds=8)
    response = browser.get(launch_url(sandbox, oracle.create_launch(appointment)))
    assert_friendly(response, 504, "did not answer in time")


def test_cerner_down_gives_a_dependency_page(sandbox, oracle, browser, signed_in_provider):
    appointment = todays_appointments(oracle)[0]
    oracle.fail_next(f"/Appointment/{appointment}", status=500)
    response = browser.get(launch_url(sandbox, oracle.create_launch(appointment)))
    assert_friendly(response, 502, "Cerner answered HTTP 500")


def test_no_open_redirect_through_the_launch(sandbox, oracle):
    response = httpx.get(launch_url(sandbox, "x", iss="https://evil.example/r4/x"), follow_redirects=False)
    assert response.status_code == 403 and "location" not in response.headers
    start = httpx.get(launch_url(sandbox, oracle.create_launch(todays_appointments(oracle)[0])), follow_redirects=False)
    assert start.headers["location"].startswith(f"{sandbox.world.oracle_url}/tenants/")


def test_no_appointment_today_with_this_provider_gets_its_own_page(sandbox, oracle, browser, signed_in_provider):
    # A patient of our own, booked now with another practitioner only: independent of the seed's age and of
    # what other tests booked.
    tenant = config.CERNER_TEST_TENANT
    patient = oracle.add_patient(PatientSpec("Noone", "Todaywithyou", "en"), tenant=tenant)
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=10)
    oracle.add_appointment(patient_id=patient, practitioner_id=OTHER_PRACTITIONER, start=start,
                           end=start + timedelta(minutes=20), location_id=oracle.seeded[tenant].locations[0])
    launch = oracle.create_launch(None, patient_id=patient, practitioner_id=PRACTITIONER)
    response = browser.get(launch_url(sandbox, launch))
    assert_friendly(response, 404, "no virtual appointment today for this patient with you")


def test_todays_appointment_with_this_provider_is_found_without_context(sandbox, oracle, browser,
                                                                        signed_in_provider):
    """The counterpart of the page above: the same kind of patient, booked with the launching provider."""
    tenant = config.CERNER_TEST_TENANT
    patient = oracle.add_patient(PatientSpec("Someone", "Todaywithyou", "en"), tenant=tenant)
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=10)
    oracle.add_appointment(patient_id=patient, practitioner_id=OTHER_PRACTITIONER, start=start,
                           end=start + timedelta(minutes=20), location_id=oracle.seeded[tenant].locations[0])
    mine = oracle.add_appointment(patient_id=patient, practitioner_id=PRACTITIONER, start=start + timedelta(hours=1),
                                  end=start + timedelta(hours=1, minutes=20),
                                  location_id=oracle.seeded[tenant].locations[0])
    launch = oracle.create_launch(None, patient_id=patient, practitioner_id=PRACTITIONER)
    response = browser.get(launch_url(sandbox, launch))
    assert response.status_code == 200, response.text
    assert patient_name(oracle, mine) in response.text


def test_unknown_environment_name_is_a_400(sandbox, browser):
    assert_friendly(browser.get(launch_url(sandbox, "x", environment="<script>")), 400, "launch link")


@pytest.mark.parametrize("spelling", ["upper-case host", "trailing dot", "trailing slash", "empty segments"])
def test_a_launch_iss_in_any_alias_form_finds_the_registration_and_asks_for_the_canonical_aud(sandbox, oracle,
                                                                                               spelling):
    base = sandbox.world.fhir_base()
    parts = urlsplit(base)
    iss = {"upper-case host": base.replace(parts.netloc, parts.netloc.upper()),
           "trailing dot": base.replace(f"{parts.hostname}:", f"{parts.hostname}.:"),
           "trailing slash": base + "/",
           "empty segments": base.replace("/r4/", "//r4//")}[spelling]
    start = httpx.get(launch_url(sandbox, oracle.create_launch(todays_appointments(oracle)[0]), iss=iss),
                      follow_redirects=False)
    assert start.status_code == 302, start.text
    assert parse_qs(urlsplit(start.headers["location"]).query)["aud"] == [base]


# Identity checks of tests/security/test_id_token.py, on the same switchable tenants: what passes ------------------


def test_genuine_id_token_of_a_switched_tenant_gets_the_provider_through(sandbox, oracle, cerner, accounts,
                                                                        signed_in_provider):
    """The tenants the id_token attacks use (tests/security) let a genuine launch through."""
    response = launch_at(sandbox, oracle, cerner)
    assert response.status_code == 200 and "/api/visits/" in str(response.url), response.text[:500]
    assert len(linked_ehr_users(accounts, cerner)) == 1


def test_missing_kid_with_a_single_key_is_accepted(sandbox, oracle, cerner, signed_in_provider):
    """Without kid, the only key of the JWKS is the key (SMART servers may omit kid)."""
    oracle.forge_next_id_token(cerner.tenant, drop_kid=True)
    response = launch_at(sandbox, oracle, cerner)
    assert response.status_code == 200 and "/api/visits/" in str(response.url), response.text[:500]

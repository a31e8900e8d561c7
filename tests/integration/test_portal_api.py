"""The admin portal's JSON API through the local host: sign-in, roles, CSRF, tenants, validation, SMS numbers."""

from __future__ import annotations

import httpx
import pytest

from sandbox import config
from sandbox.entra import (
    ADMIN_OID,
    ADMIN_UPN,
    GLOBAL_READER_UPN,
    NO_ROLE_UPN,
    OTHER_ADMIN_OID,
    OTHER_ADMIN_UPN,
    REPORTS_READER_UPN,
    TEAMS_ADMIN_UPN,
)
from sandbox.servers import free_port
from shared.storage.config import endpoint_id_for
from tests.integration.portal_client import JSON, sign_in
from tests.waiting import wait_until

ORGANIZER = "virtual.appointments@contoso-health.example"


@pytest.fixture(scope="module")
def other_admin(sandbox):
    portal = sign_in(sandbox, OTHER_ADMIN_UPN)
    yield portal
    portal.http.close()


@pytest.fixture()
def test_endpoint(sandbox, admin):
    """The seeded test endpoint of Contoso; restored after the test so other tests see the demo set-up."""
    endpoint_id = endpoint_id_for(sandbox.world.fhir_base())
    before = next(e for e in admin.get("endpoints").json()["endpoints"] if e["id"] == endpoint_id)
    yield before
    admin.send("PUT", f"endpoints/{endpoint_id}", {k: before[k] for k in (
        "base_url", "environment", "display_name", "departments", "organizer")}).raise_for_status()
    admin.send("PUT", f"endpoints/{endpoint_id}/sms", {k: before[k] for k in (
        "sms_number", "channel", "confirmations_on", "reminder_offsets", "quiet_hours", "default_language",
        "time_zone")}).raise_for_status()


def endpoint_body(base_url: str, environment: str = "test", **extra) -> dict:
    return {"base_url": base_url, "environment": environment, "display_name": "Portal test",
            "departments": ["32216049"], "organizer": ORGANIZER, **extra}


# --- sign-in, session, roles -----------------------------------------------------------------------------------


def test_sign_in_gives_a_one_hour_http_only_session_for_the_tenant(sandbox):
    http = httpx.Client(base_url=sandbox.world.host_url, follow_redirects=True, timeout=30)
    page = http.get("/api/portal/auth/signin", params={"login_hint": ADMIN_UPN})
    session_cookie = next(h for r in page.history for h in r.headers.get_list("set-cookie")
                          if h.startswith("portal_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    assert "Max-Age=3600" in session_cookie and "Path=/api/portal" in session_cookie
    assert "Secure" not in session_cookie, "the sandbox host is plain http; Secure comes with an https base URL"
    assert ADMIN_UPN not in session_cookie and ADMIN_OID not in session_cookie, "the cookie is sealed"
    assert 'id="step-1"' in page.text
    me = http.get("/api/portal/me", headers=JSON).json()
    assert me["tenant_id"] == config.ENTRA_TENANT_ID and me["role"] == "Global Administrator" and me["can_write"]


def test_without_a_session_the_api_says_sign_in_and_the_page_offers_it(sandbox):
    with httpx.Client(base_url=sandbox.world.host_url, timeout=30) as http:
        response = http.get("/api/portal/endpoints")
        page = http.get("/api/portal")
        tampered = http.get("/api/portal/me", headers={"Cookie": "portal_session=k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
    assert response.status_code == 401 and response.json()["error"] == "not_signed_in"
    assert tampered.status_code == 401
    assert page.status_code == 200 and 'href="/api/portal/auth/signin"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize("upn,role", [(TEAMS_ADMIN_UPN, "Teams Administrator"), (GLOBAL_READER_UPN, "Global Reader"),
                                      (REPORTS_READER_UPN, "Reports Reader")])
def test_reader_roles_see_the_configuration_but_cannot_change_it(sandbox, fhir_server, upn, role):
    reader = sign_in(sandbox, upn)
    assert reader.me["role"] == role and not reader.me["can_write"]
    assert reader.get("endpoints").json()["endpoints"], "readers see the organization's endpoints"
    assert reader.get("records").status_code == reader.get("sms/numbers").status_code == 200
    for method, path, body in (("POST", "endpoints", endpoint_body(f"{fhir_server}/r4/good")),
                               ("PUT", "sms/consents", {"consent_send": True, "consent_attendees": True}),
                               ("POST", "sms/numbers", {"country": "US"})):
        refused = reader.send(method, path, body)
        assert refused.status_code == 403, path
        assert refused.json()["message"] == f"Your role ({role}) can view the configuration but not change it."
    assert "Read-only" in reader.http.get("/api/portal").text


def test_account_without_an_admin_role_gets_a_page_naming_the_roles_needed(sandbox):
    with httpx.Client(base_url=sandbox.world.host_url, follow_redirects=True, timeout=30) as http:
        page = http.get("/api/portal/auth/signin", params={"login_hint": NO_ROLE_UPN})
        api = http.get("/api/portal/me", headers=JSON)
    assert page.status_code == 403
    assert "Your account has no administrator role that this portal accepts." in page.text
    assert "Global Administrator" in page.text and "Global Reader" in page.text
    assert api.status_code == 401, "no session for an account without a role"


def test_a_callback_that_did_not_start_in_this_browser_opens_no_session(sandbox):
    with httpx.Client(base_url=sandbox.world.host_url, timeout=30) as http:
        started = http.get("/api/portal/auth/signin", params={"login_hint": ADMIN_UPN})
        assert started.status_code == 302 and "portal_sign_in=" in started.headers["set-cookie"]
        forged = http.get("/api/portal/auth/callback", params={"code": "stolen", "state": "forged"})
        assert forged.status_code == 401 and "This sign-in did not start in this browser." in forged.text
        http.cookies.clear()
        stray = http.get("/api/portal/auth/callback", params={"code": "stolen", "state": "forged"})
        assert stray.status_code == 401
        assert http.get("/api/portal/me", headers=JSON).status_code == 401


def test_changes_without_the_sessions_csrf_token_are_refused(admin, fhir_server):
    body = {"base_url": f"{fhir_server}/r4/good", "environment": "test"}
    for csrf in (None, "not-the-token"):
        refused = admin.send("POST", "endpoints/validate", body, csrf=csrf)
        assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
        assert "X-CSRF-Token" in refused.json()["message"]
    assert admin.send("PUT", "sms/consents", {"consent_send": True, "consent_attendees": True},
                      csrf=None).status_code == 403


def test_sign_out_needs_the_token_then_ends_the_session_and_goes_to_entra(sandbox):
    portal = sign_in(sandbox, ADMIN_UPN)
    refused = portal.http.post("/api/portal/auth/signout", follow_redirects=False)
    assert refused.status_code == 403
    out = portal.http.post("/api/portal/auth/signout", data={"csrf_token": portal.csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"].startswith(f"{sandbox.world.entra_url}/organizations/oauth2/v2.0/logout?")
    assert "portal_session=;" in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert portal.get("me").status_code == 401


# --- tenant isolation ------------------------------------------------------------------------------------------


def test_another_tenant_neither_sees_nor_changes_contosos_configuration(sandbox, admin, other_admin):
    contoso_id = endpoint_id_for(sandbox.world.fhir_base())
    assert other_admin.me["tenant_id"] == config.OTHER_TENANT_ID
    assert other_admin.get("endpoints").json() == {"endpoints": []}
    assert other_admin.get("records").json() == {"records": []}
    body = endpoint_body(sandbox.world.fhir_base())
    assert other_admin.send("PUT", f"endpoints/{contoso_id}", body).status_code == 404
    assert other_admin.send("PUT", f"endpoints/{contoso_id}/sms", {"sms_number": ""}).status_code == 404
    assert other_admin.send("DELETE", f"endpoints/{contoso_id}").status_code == 404
    taken = other_admin.send("POST", "endpoints/validate", {"base_url": body["base_url"], "environment": "test"})
    assert taken.status_code == 409
    assert taken.json()["message"] == "This FHIR base URL is already registered by another organization."
    contoso = admin.get("endpoints").json()["endpoints"]
    assert any(e["id"] == contoso_id and e["sms_number"] for e in contoso), "Contoso's endpoint is untouched"


# --- region ----------------------------------------------------------------------------------------------------


def test_region_is_chosen_once_and_shown_afterwards(admin, other_admin):
    assert admin.get("region").json()["region"] == "americas"
    moved = admin.send("PUT", "region", {"region": "emea"})
    assert moved.status_code == 409
    assert moved.json()["message"] == "The data region is already americas and cannot be changed."
    assert admin.send("PUT", "region", {"region": "americas"}).status_code == 200
    bad = admin.send("PUT", "region", {"region": "mars"})
    assert bad.status_code == 400 and bad.json()["message"].startswith("Some fields are not valid: region:")
    fresh = other_admin.get("region").json()
    assert fresh["chosen"] is False and fresh["region"] is None and fresh["default"] == "americas"


# --- FHIR base URL validation ----------------------------------------------------------------------------------


def failure(portal, base_url: str, environment: str = "test") -> tuple[int, dict]:
    response = portal.send("POST", "endpoints/validate", {"base_url": base_url, "environment": environment})
    return response.status_code, response.json()


def test_each_validation_check_names_itself_and_says_what_failed(sandbox, admin, fhir_server):
    oracle = sandbox.world.oracle_url
    unused = f"https://localhost:{free_port()}"
    cases = [
        ("fhir-ehr.cerner.com/r4/abc", "url", "FHIR URL isn't valid: it is not a complete URL."),
        ("https://fhir.example/r4/abc?x=1", "url", "FHIR URL isn't valid: remove the user name, query string or "
                                                   "fragment; enter the base URL only."),
        ("http://fhir-ehr.cerner.com/r4/abc", "https", "FHIR URL isn't valid: it must start with https://."),
        ("https://no-such-host.invalid/r4/abc", "trusted_host",
         "FHIR URL isn't valid: no-such-host.invalid is not a trusted Oracle Health host (trusted: localhost)."),
        ("https://169.254.169.254/r4/abc", "trusted_host",
         "FHIR URL isn't valid: 169.254.169.254 is not a trusted Oracle Health host (trusted: localhost)."),
        (f"{unused}/r4/abc", "metadata", f"FHIR URL isn't valid: {unused}/r4/abc/metadata could not be reached."),
        (f"{oracle}/r4/not-a-tenant", "metadata",
         f"FHIR URL isn't valid: {oracle}/r4/not-a-tenant/metadata answered HTTP 404."),
        (f"{fhir_server}/r4/notfhir", "metadata",
         f"FHIR URL isn't valid: {fhir_server}/r4/notfhir/metadata is not a FHIR CapabilityStatement."),
        (f"{oracle}/dstu2/{config.CERNER_TEST_TENANT}", "fhir_version", "FHIR URL isn't valid: use the R4 base URL."),
        (f"{fhir_server}/r4/stu3", "fhir_version",
         "FHIR URL isn't valid: the server speaks FHIR 3.0.2; the connector needs FHIR R4 (4.0.1)."),
        (f"{fhir_server}/r4/nosmart", "smart_configuration", f"FHIR URL isn't valid: {fhir_server}/r4/nosmart/"
                                                             ".well-known/smart-configuration is missing, so SMART "
                                                             "launches cannot start."),
    ]
    for base_url, check, message in cases:
        status, body = failure(admin, base_url)
        assert (status, body.get("check"), body.get("message")) == (400, check, message), base_url
        assert body["error"] == "invalid_fhir_url" and body["next_step"]


def test_a_url_is_registered_under_one_environment_only(sandbox, admin):
    test_url = sandbox.world.fhir_base()
    status, body = failure(admin, test_url, "production")
    assert (status, body["check"]) == (409, "registered")
    assert body["message"] == "This FHIR base URL is already registered under the test environment."
    status, body = failure(admin, test_url + "/", "test")
    assert (status, body["message"]) == (409, "This FHIR base URL is already registered (test).")


def test_valid_url_passes_every_check_in_order(admin, fhir_server):
    response = admin.send("POST", "endpoints/validate", {"base_url": f"{fhir_server}/r4/good/",
                                                         "environment": "production"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["valid"] and report["fhir_version"] == "4.0.1" and report["base_url"] == f"{fhir_server}/r4/good"
    assert [c["check"] for c in report["checks"]] == ["url", "https", "trusted_host", "registered", "address",
                                                      "metadata", "fhir_version", "smart_configuration"]


def test_bad_request_bodies_get_a_4xx_with_a_message(admin):
    raw = {"Content-Type": "application/json", "X-CSRF-Token": admin.csrf, **JSON}
    malformed = admin.http.post("/api/portal/endpoints", content=b'{"base_url": ', headers=raw)
    assert (malformed.status_code, malformed.json()["message"]) == (400, "The request body is not valid JSON.")
    array = admin.http.post("/api/portal/endpoints", content=b"[]", headers=raw)
    assert (array.status_code, array.json()["message"]) == (400, "The request body must be a JSON object.")
    huge = admin.http.put("/api/portal/sms/consents", content=b'{"x": "' + b"a" * 70_000 + b'"}', headers=raw)
    assert (huge.status_code, huge.json()["message"]) == (413, "The request body is larger than 64 KiB.")
    wrong_type = admin.send("PUT", "sms/consents", {"consent_send": "yes", "consent_attendees": True})
    assert wrong_type.status_code == 400
    assert wrong_type.json()["message"] == "Some fields are not valid: consent_send: Input should be a valid boolean."
    cases = [
        ({"environment": "staging"}, "environment: Input should be 'test' or 'production'"),
        ({"organizer": "not an account"}, "organizer: Value error, must be the Teams account's user principal name "
                                          "(name@domain) or its object ID"),
        ({"departments": ["32216049", "a/b"]}, "departments.1: String should match pattern"),
        ({"unexpected": 1}, "unexpected: Extra inputs are not permitted"),
    ]
    for change, message in cases:
        response = admin.send("POST", "endpoints", endpoint_body("https://fhir.example/r4/x", **change))
        assert response.status_code == 400 and message in response.json()["message"], response.text


# --- add, edit, remove, records, licence -----------------------------------------------------------------------


def test_add_edit_and_remove_a_fhir_base_url_with_its_integration_record(sandbox, admin, fhir_server):
    added = admin.send("POST", "endpoints", endpoint_body(f"{fhir_server}/r4/good", "production"))
    assert added.status_code == 201, added.text
    endpoint = added.json()
    assert endpoint["base_url"] == f"{fhir_server}/r4/good" and endpoint["departments"] == ["32216049"]
    again = admin.send("POST", "endpoints", endpoint_body(f"{fhir_server}/r4/good", "production"))
    assert again.status_code == 409

    edited = admin.send("PUT", f"endpoints/{endpoint['id']}", endpoint_body(
        f"{fhir_server}/r4/good", "production", display_name="Renamed", departments=["1", "2"]))
    assert edited.status_code == 200 and edited.json()["display_name"] == "Renamed"
    moved = admin.send("PUT", f"endpoints/{endpoint['id']}", endpoint_body(f"{fhir_server}/r4/other", "production"))
    assert moved.status_code == 400 and moved.json()["message"] == "The FHIR base URL of an entry cannot be changed."

    record = next(r for r in admin.get("records").json()["records"] if r["endpoint_id"] == endpoint["id"])
    host = sandbox.world.host_url
    assert record["provider_launch_url"] == f"{host}/api/launch/provider?environment=production"
    assert record["patient_launch_url"] == f"{host}/api/join/"
    assert record["redirect_uri"] == f"{host}/api/launch/callback"
    assert record["client_id"] == config.SMART_CLIENT_ID
    assert record["scopes"].split() == ["launch", "openid", "fhirUser", "user/Appointment.read",
                                        "user/Patient.read", "user/Practitioner.read"]
    assert any(record["provider_launch_url"] in step for step in record["cerner_steps"])

    asked = admin.send("DELETE", f"endpoints/{endpoint['id']}")
    assert asked.status_code == 409 and asked.json()["error"] == "confirmation_required"
    assert asked.json()["provider_links"] == 0 and "confirm=true" in asked.json()["next_step"]
    assert endpoint["id"] in [e["id"] for e in admin.get("endpoints").json()["endpoints"]], "nothing removed yet"
    removed = admin.send("DELETE", f"endpoints/{endpoint['id']}?confirm=true")
    assert removed.status_code == 200 and removed.json() == {"removed": endpoint["id"], "provider_links_deleted": 0}
    assert admin.send("DELETE", f"endpoints/{endpoint['id']}?confirm=true").status_code == 404
    assert endpoint["id"] not in [e["id"] for e in admin.get("endpoints").json()["endpoints"]]


def test_licence_state_and_a_production_launch_without_licence(sandbox, admin, other_admin, fhir_server):
    licensed = admin.get("licence").json()
    assert licensed["licensed"] and licensed["skus"] == ["Microsoft_Cloud_for_Healthcare"]
    unlicensed = other_admin.get("licence").json()
    assert not unlicensed["licensed"] and unlicensed["required_for"] == ["production"]
    assert unlicensed["message"].startswith("No active licence found.")

    no_region = other_admin.send("POST", "endpoints", endpoint_body(f"{fhir_server}/r4/good", "production"))
    assert no_region.status_code == 409
    assert no_region.json()["message"] == "Choose your organization's data region before adding a FHIR base URL."
    assert other_admin.send("PUT", "region", {"region": "americas"}).status_code == 200
    added = other_admin.send("POST", "endpoints", endpoint_body(
        f"{fhir_server}/r4/good", "production", organizer="admin@fabrikam-clinic.example"))
    assert added.status_code == 201, added.text
    try:
        with httpx.Client(timeout=30) as browser:
            page = browser.get(f"{sandbox.world.host_url}/api/launch/provider",
                               params={"iss": f"{fhir_server}/r4/good", "launch": "abc"})
        assert page.status_code == 403
        assert "No active licence" in page.text and "Microsoft_Cloud_for_Healthcare" in page.text
    finally:
        other_admin.send("DELETE", f"endpoints/{added.json()['id']}?confirm=true")


# --- SMS: consents, numbers, links -----------------------------------------------------------------------------


def poll(portal, number_id: str) -> dict:
    """What the browser does while it shows progress: POST .../advance until the purchase has settled."""
    def settled() -> dict | None:
        response = portal.send("POST", f"sms/numbers/{number_id}/advance")
        assert response.status_code == 200, response.text
        number = response.json()
        return number if number["status"] in ("provisioned", "failed") else None

    return wait_until(settled, interval=0.25) or portal.get(f"sms/numbers/{number_id}").json()


def test_consents_are_needed_before_a_number_and_are_recorded_with_who_and_when(other_admin):
    refused = other_admin.send("POST", "sms/numbers", {"country": "US"})
    assert refused.status_code == 409
    assert refused.json()["message"] == "Give both SMS consents before generating a phone number."
    half = other_admin.send("PUT", "sms/consents", {"consent_send": True, "consent_attendees": False}).json()
    assert half["consent_send"] and not half["complete"] and half["consent_send_by"] == other_admin.me["actor"]
    assert half["consent_send_by_you"] and OTHER_ADMIN_OID not in half["consent_send_by"]
    both = other_admin.send("PUT", "sms/consents", {"consent_send": True, "consent_attendees": True}).json()
    assert both["complete"] and both["consent_attendees_by"] == other_admin.me["actor"] and both["consent_attendees_at"]
    assert both["consent_send_at"] == half["consent_send_at"], "an unchanged consent keeps its record"


def test_generating_a_number_runs_search_then_purchase_while_the_browser_polls(sandbox, admin, other_admin, acs,
                                                                             test_endpoint):
    earlier = set(acs.operations)
    response = admin.send("POST", "sms/numbers", {"country": "US"})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/portal/sms/numbers/{response.json()['id']}"
    assert response.json()["status"] == "searching" and response.json()["progress"]["step"] == 1

    reader = sign_in(sandbox, GLOBAL_READER_UPN)

    def search_done() -> bool:
        ours = [op for key, op in list(acs.operations.items()) if key not in earlier and op.operation_type == "search"]
        return bool(ours) and all(op.status_at(acs.now()) == "succeeded" for op in ours)

    assert wait_until(search_done), "ACS finished the number search"
    assert reader.get(f"sms/numbers/{response.json()['id']}").json()["status"] == "searching", \
        "a reader's look does not move the purchase on"
    assert reader.send("POST", f"sms/numbers/{response.json()['id']}/advance").status_code == 403
    assert admin.get(f"sms/numbers/{response.json()['id']}").json()["status"] == "searching", \
        "nor does an administrator's GET"

    number = poll(admin, response.json()["id"])
    assert number["status"] == "provisioned", number
    assert number["number"] in acs.numbers and number["verification"] == "unverified"
    assert number["reaches"] == ["US", "CA", "PR"] and "toll-free verification" in number["what_to_do"]
    assert number["progress"]["label"] == "Provisioned, not linked to a FHIR base URL yet."
    listed = {n["number"]: n for n in admin.get("sms/numbers").json()["numbers"]}
    assert listed[number["number"]]["status"] == "provisioned"
    assert listed["+18005550100"]["managed"] is False, "the seeded number shows as provisioned elsewhere"

    assert other_admin.get(f"sms/numbers/{number['id']}").status_code == 404, "another tenant cannot see it"
    assert other_admin.send("PUT", f"sms/numbers/{number['id']}", {"verification": "verified"}).status_code == 404
    pending = admin.send("PUT", f"sms/numbers/{number['id']}", {"verification": "pending"}).json()
    assert pending["verification"] == "pending" and "5 to 8 weeks" in pending["what_to_do"]

    settings = {"sms_number": number["number"], "confirmations_on": False, "reminder_offsets": [15, 1440, 15],
                "quiet_hours": "21:00-08:00", "default_language": "es", "time_zone": "America/New_York"}
    linked = admin.send("PUT", f"endpoints/{test_endpoint['id']}/sms", settings)
    assert linked.status_code == 200, linked.text
    assert linked.json()["sms_number"] == number["number"] and linked.json()["reminder_offsets"] == [1440, 15]
    assert admin.get(f"sms/numbers/{number['id']}").json()["linked_endpoints"] == [test_endpoint["id"]]

    emailing = admin.send("PUT", f"endpoints/{test_endpoint['id']}/sms", {**settings, "channel": "both"})
    assert emailing.status_code == 200 and emailing.json()["channel"] == "both"
    again = admin.send("PUT", f"endpoints/{test_endpoint['id']}/sms", settings)
    assert again.json()["channel"] == "both", "a client that does not know channel leaves it as it is"
    consents = admin.get("sms/consents").json()
    assert consents["email"]["domain"] == "sandbox.azurecomm.net" and consents["email"]["verification"] == "verified"


def test_a_failed_purchase_is_reported_with_what_to_do(admin, acs):
    owned_before = set(acs.numbers)
    acs.fail_next_purchase = True
    number = poll(admin, admin.send("POST", "sms/numbers", {"country": "CA"}).json()["id"])
    assert number["status"] == "failed"
    assert number["error"] == "Azure Communication Services could not complete the purchase (PurchaseFailed)."
    assert number["what_to_do"] == "Generate a new phone number to try again."
    assert set(acs.numbers) == owned_before


def test_destinations_a_toll_free_number_cannot_reach_are_refused_clearly(admin):
    response = admin.send("POST", "sms/numbers", {"country": "BR"})
    assert response.status_code == 400
    assert response.json()["message"] == ("ACS can't text patients in Brazil from a toll-free number: toll-free "
                                          "numbers reach the United States, Canada and Puerto Rico only.")


def test_sms_settings_are_validated(admin, test_endpoint):
    path = f"endpoints/{test_endpoint['id']}/sms"
    cases = [
        ({"sms_number": "+18005559999"}, "This phone number is not one of your organization's provisioned numbers."),
        ({"sms_number": "8005550100"}, "sms_number: Value error, must be a phone number in E.164 form"),
        ({"quiet_hours": "9pm-8am"}, "quiet_hours: Value error, must look like 21:00-08:00"),
        ({"time_zone": "Mars/Olympus"}, "time_zone: Value error, must be an IANA time zone"),
        ({"reminder_offsets": [0]}, "reminder_offsets.0: Input should be greater than or equal to 1"),
        ({"default_language": "fr"}, "default_language: Input should be 'en', 'es' or 'pt-BR'"),
    ]
    for change, message in cases:
        response = admin.send("PUT", path, {"sms_number": test_endpoint["sms_number"], **change})
        assert response.status_code == 400 and message in response.json()["message"], response.text


def test_portal_assets_are_a_fixed_list(sandbox):
    with httpx.Client(base_url=sandbox.world.host_url, timeout=30) as http:
        script = http.get("/api/portal/static/portal.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert http.get("/api/portal/static/host.json").status_code == 404
        assert http.get("/api/portal/static/..%2Ffunction_app.py").status_code == 404

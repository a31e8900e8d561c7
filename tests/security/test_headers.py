"""Headers and cookies: no framing, no sniffing, HSTS over https, __Host- cookies a sibling host cannot toss."""

from __future__ import annotations

import base64

from functions.join import patient_join
from functions.visits import visit_page
from shared.launch import SESSION_COOKIE
from shared.tokens import cookie_header, sealer
from shared.visits import provider_page_policy
from tests.security.conftest import PUBLIC_URL, http_functions, http_request

OWN_KEYS = {"SEAL_KEYS": "k1:" + base64.b64encode(b"\x33" * 32).decode(), "SEAL_ACTIVE_KEY_ID": "k1",
            "HASH_KEY": base64.b64encode(b"\x44" * 32).decode()}


def every_route_response(accept: str = "text/html"):
    """(name, response) of every HTTP route answering a request with made-up parameters."""
    for name, method, route, handler in http_functions():
        params = {part.strip("{}*").split(":")[0]: "x" for part in route.split("/") if part.startswith("{")}
        yield name, handler(http_request(method, route, headers={"accept": accept}, route_params=params, body=b"{}"))


def test_no_route_can_be_framed_by_another_site(app_with):
    """Attack: clickjacking, any page of the app (patient, portal, error) framed by an attacker's page."""
    app_with(**OWN_KEYS, PUBLIC_BASE_URL="http://127.0.0.1:7071", ENTRA_TENANT_ID="", ACS_ENDPOINT="")
    for name, response in every_route_response():
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], name
        assert response.headers["X-Frame-Options"] == "DENY", name


def test_no_response_can_be_sniffed_into_script(app_with):
    """Attack: MIME sniffing, a JSON or text answer loaded as a script or style by another page."""
    app_with(**OWN_KEYS, PUBLIC_BASE_URL="http://127.0.0.1:7071", ENTRA_TENANT_ID="", ACS_ENDPOINT="")
    for accept in ("text/html", "application/json"):
        for name, response in every_route_response(accept):
            assert response.headers["X-Content-Type-Options"] == "nosniff", (name, accept)


def test_every_route_over_https_demands_https_next_time(app_with):
    """Attack: SSL stripping, a network attacker downgrading the next visit to plain http."""
    app_with(**OWN_KEYS, PUBLIC_BASE_URL=PUBLIC_URL, ENTRA_TENANT_ID="", ACS_ENDPOINT="")
    for name, response in every_route_response():
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000"), name


def test_provider_page_may_be_framed_only_by_the_configured_hospital(app_with):
    """Attack: a site other than the hospital's portal frames the provider's visit page."""
    app_with(**OWN_KEYS, PROVIDER_FRAME_ANCESTORS="https://portal.contoso-health.example")
    policy = provider_page_policy("n0nce")
    assert policy.endswith("frame-ancestors https://portal.contoso-health.example")
    app_with(**OWN_KEYS, PROVIDER_FRAME_ANCESTORS="")
    assert provider_page_policy("n0nce").endswith("frame-ancestors 'none'")


def test_provider_error_pages_follow_the_hospital_setting_and_patient_pages_stay_unframeable(app_with):
    """Attack: framing a patient page under the hospital's allowance, which is for provider pages only."""
    app_with(**OWN_KEYS, PROVIDER_FRAME_ANCESTORS="https://portal.contoso-health.example")
    provider = visit_page(http_request("GET", "visits/x", route_params={"visit": "x"}))
    assert provider.status_code == 400
    assert provider.headers["Content-Security-Policy"].endswith("frame-ancestors https://portal.contoso-health.example")
    assert "X-Frame-Options" not in provider.headers
    joined = patient_join(http_request("GET", "join/x", route_params={"token": "x"}))
    assert "frame-ancestors 'none'" in joined.headers["Content-Security-Policy"]
    assert joined.headers["X-Frame-Options"] == "DENY"


def test_a_session_cookie_tossed_without_the_host_prefix_is_ignored(app_with):
    """Attack: cookie tossing, a sibling subdomain sets a plain ehr_session cookie to plant its own session."""
    app_with(**OWN_KEYS, PUBLIC_BASE_URL=PUBLIC_URL)
    session = sealer().seal_json({"tenant": "t", "endpoint": "e", "ehr_user": "u", "token": "x", "oid": "o"}, 600,
                                 "ehr-session")
    visit = sealer().seal_json({"tenant": "t", "endpoint": "e", "appointment": "1", "ehr_user": "u"}, 600, "visit")
    assert SESSION_COOKIE.name == "__Host-ehr_session"
    tossed = visit_page(http_request("GET", f"visits/{visit}", route_params={"visit": visit},
                                     headers={"cookie": f"ehr_session={session}"}))
    assert tossed.status_code == 401 and "Your Cerner session has ended" in tossed.get_body().decode()
    genuine = visit_page(http_request("GET", f"visits/{visit}", route_params={"visit": visit},
                                      headers={"cookie": f"__Host-ehr_session={session}"}))
    assert genuine.status_code != 401, "the same session under its __Host- name is read"


def test_session_cookies_over_https_are_host_only_secure_and_http_only(app_with):
    """Attack: a session cookie sent over plain http, read by script, or scoped to a parent domain."""
    app_with(**OWN_KEYS, PUBLIC_BASE_URL=PUBLIC_URL)
    header = cookie_header(SESSION_COOKIE, "v")
    assert header.startswith("__Host-ehr_session=v; Path=/;")
    assert "; Secure" in header and "; HttpOnly" in header and "SameSite=Lax" in header and "Domain" not in header

"""The Oracle Health stand-in, spoken to over real https as the app and the reminder job will."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sandbox.config import (
    CERNER_PROD_TENANT,
    CERNER_TEST_TENANT,
    SMART_CLIENT_ID,
    SMART_SYSTEM_CLIENT_ID,
    SMART_SYSTEM_SECRET,
)
from sandbox.oracle import OracleState, build_app
from sandbox.servers import free_port, serve

CALLBACK = "http://127.0.0.1:7071/api/launch/callback"
LAUNCH_URL = "http://127.0.0.1:7071/api/launch/provider"
USER_SCOPES = "launch openid fhirUser user/Appointment.read user/Patient.read user/Practitioner.read"
START = datetime.now(UTC)
JWT_CLIENT_ID = "reminders-jwt-client"


class Clock:
    """The world's clock: real start time plus whatever a test advances."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return START + self.offset + timedelta(seconds=time.monotonic() - MONOTONIC_START)

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


MONOTONIC_START = time.monotonic()
CLOCK = Clock()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())


def public_jwks() -> dict:
    """The reminder job's public keys as registered in Cerner Central."""
    rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)
    ec_jwk = jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True)
    return {"keys": [{**rsa_jwk, "kid": "rsa-1", "alg": "RS384"}, {**ec_jwk, "kid": "ec-1", "alg": "ES384"}]}


@pytest.fixture(scope="module")
def state() -> OracleState:
    world = OracleState(redirect_uris=[CALLBACK], launch_url=LAUNCH_URL, clock=CLOCK)
    world.register_system_client(JWT_CLIENT_ID, public_jwks())
    return world


@pytest.fixture(scope="module")
def origin(state: OracleState, dev_ca) -> Iterator[str]:
    server = serve(build_app(state), free_port(), dev_ca)
    yield f"https://localhost:{server.port}"
    server.stop()


@pytest.fixture
def http(origin: str, state: OracleState) -> Iterator[httpx.Client]:
    state.pkce_advertised, state.pkce_required, state.deny_next_authorization = True, True, False
    CLOCK.offset = timedelta(0)
    with httpx.Client(base_url=origin, follow_redirects=False, timeout=10) as client:
        yield client
    CLOCK.offset = timedelta(0)


def fhir_base(origin: str, tenant: str = CERNER_TEST_TENANT) -> str:
    return f"{origin}/r4/{tenant}"


def oauth_path(tenant: str = CERNER_TEST_TENANT) -> str:
    return f"/tenants/{tenant}/protocols/oauth2/profiles/smart-v1"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(http: httpx.Client, launch: str, tenant: str = CERNER_TEST_TENANT, **overrides: str | None
              ) -> httpx.Response:
    params = {"response_type": "code", "client_id": SMART_CLIENT_ID, "redirect_uri": CALLBACK, "launch": launch,
              "scope": USER_SCOPES, "state": "st-123", "aud": fhir_base(str(http.base_url).rstrip("/"), tenant),
              "nonce": "n-456", **overrides}
    return http.get(f"{oauth_path(tenant)}/personas/provider/authorize",
                    params={k: v for k, v in params.items() if v is not None})


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK)
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def exchange(http: httpx.Client, code: str, verifier: str | None, tenant: str = CERNER_TEST_TENANT,
             **overrides: str | None) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "client_id": SMART_CLIENT_ID,
            "code_verifier": verifier, **overrides}
    return http.post(f"{oauth_path(tenant)}/token", data={k: v for k, v in form.items() if v is not None})


def launch_and_code(http: httpx.Client, state: OracleState, tenant: str = CERNER_TEST_TENANT
                    ) -> tuple[str, str, str]:
    """(appointment id, code, verifier) after a successful PKCE authorization."""
    appointment_id = state.seeded[tenant].today[2]
    verifier, challenge = pkce_pair()
    launch = state.create_launch(appointment_id, tenant=tenant)
    query = redirect_query(authorize(http, launch, tenant, code_challenge=challenge, code_challenge_method="S256"))
    return appointment_id, query["code"], verifier


def user_token(http: httpx.Client, state: OracleState, tenant: str = CERNER_TEST_TENANT) -> dict:
    _, code, verifier = launch_and_code(http, state, tenant)
    response = exchange(http, code, verifier, tenant)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def system_token(http: httpx.Client, scope: str = "system/Appointment.read system/Patient.read") -> str:
    basic = base64.b64encode(f"{SMART_SYSTEM_CLIENT_ID}:{SMART_SYSTEM_SECRET}".encode()).decode()
    response = http.post(f"{oauth_path()}/token", data={"grant_type": "client_credentials", "scope": scope},
                         headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


# ---- discovery and metadata ---------------------------------------------------------------------------------


def test_smart_configuration_points_at_this_server_in_cerners_shape(http: httpx.Client, origin: str) -> None:
    config = http.get(f"/r4/{CERNER_TEST_TENANT}/.well-known/smart-configuration").json()
    tenant_root = f"{origin}/tenants/{CERNER_TEST_TENANT}"
    assert config["authorization_endpoint"] == (
        f"{tenant_root}/protocols/oauth2/profiles/smart-v1/personas/provider/authorize")
    assert config["token_endpoint"] == f"{tenant_root}/protocols/oauth2/profiles/smart-v1/token"
    assert config["issuer"] == f"{tenant_root}/oidc/idsps/{CERNER_TEST_TENANT}/"
    assert config["jwks_uri"] == f"{origin}/jwk"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert {"launch-ehr", "sso-openid-connect", "client-public", "client-confidential-symmetric",
            "client-confidential-asymmetric", "permission-v1", "context-ehr-patient",
            "context-ehr-encounter"} <= set(config["capabilities"])
    oidc = http.get(f"/tenants/{CERNER_TEST_TENANT}/oidc/idsps/{CERNER_TEST_TENANT}/.well-known/openid-configuration")
    assert oidc.json()["issuer"] == config["issuer"]
    assert oidc.json()["id_token_signing_alg_values_supported"] == ["RS256"]
    assert http.get("/jwk").json()["keys"][0]["kid"]


def test_pkce_is_not_advertised_when_switched_off(http: httpx.Client, state: OracleState) -> None:
    state.pkce_advertised = False
    config = http.get(f"/r4/{CERNER_PROD_TENANT}/.well-known/smart-configuration").json()
    assert "code_challenge_methods_supported" not in config


def test_metadata_reports_fhir_versions_and_unknown_tenants_are_404(http: httpx.Client) -> None:
    r4 = http.get(f"/r4/{CERNER_TEST_TENANT}/metadata")
    assert r4.headers["content-type"].startswith("application/fhir+json")
    assert r4.json()["resourceType"] == "CapabilityStatement" and r4.json()["fhirVersion"] == "4.0.1"
    assert http.get(f"/dstu2/{CERNER_PROD_TENANT}/metadata").json()["fhirVersion"] == "1.0.2"
    unknown = http.get("/r4/00000000-0000-0000-0000-000000000000/metadata")
    assert unknown.status_code == 404 and unknown.json()["resourceType"] == "OperationOutcome"
    assert http.get("/r4/00000000-0000-0000-0000-000000000000/.well-known/smart-configuration").status_code == 404


# ---- EHR launch -------------------------------------------------------------------------------------------


def test_ehr_launch_with_pkce_yields_verifiable_id_token_and_launch_context(
    http: httpx.Client, state: OracleState, origin: str
) -> None:
    appointment_id, code, verifier = launch_and_code(http, state)
    response = exchange(http, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 570
    assert set(body["scope"].split()) == set(USER_SCOPES.split())
    assert body["fhirContext"] == [{"reference": f"Appointment/{appointment_id}"}]
    assert body["tenant"] == CERNER_TEST_TENANT and body["encounter"] and "need_patient_banner" in body
    appointment = http.get(f"/r4/{CERNER_TEST_TENANT}/Appointment/{appointment_id}",
                           headers=bearer(body["access_token"]))
    assert appointment.status_code == 200
    assert appointment.headers["etag"] == f'W/"{appointment.json()["meta"]["versionId"]}"'
    patient_ref = next(p["actor"]["reference"] for p in appointment.json()["participant"]
                       if p["actor"]["reference"].startswith("Patient/"))
    assert body["patient"] == patient_ref.removeprefix("Patient/")

    key = jwt.PyJWK(http.get("/jwk").json()["keys"][0])
    issuer = f"{origin}/tenants/{CERNER_TEST_TENANT}/oidc/idsps/{CERNER_TEST_TENANT}/"
    claims = jwt.decode(body["id_token"], key, algorithms=["RS256"], audience=SMART_CLIENT_ID, issuer=issuer)
    practitioner_ref = next(p["actor"]["reference"] for p in appointment.json()["participant"]
                            if p["actor"]["reference"].startswith("Practitioner/"))
    assert claims["fhirUser"] == f"{fhir_base(origin)}/{practitioner_ref}"
    assert claims["nonce"] == "n-456" and claims["sub"] and claims["name"]
    assert claims["exp"] - claims["iat"] == 300


def test_launch_without_appointment_has_no_fhir_context(http: httpx.Client, state: OracleState) -> None:
    patient_id = state.seeded[CERNER_TEST_TENANT].patients[0]
    launch = state.create_launch(patient_id=patient_id)
    verifier, challenge = pkce_pair()
    query = redirect_query(authorize(http, launch, code_challenge=challenge, code_challenge_method="S256"))
    body = exchange(http, query["code"], verifier).json()
    assert body["patient"] == patient_id
    assert "fhirContext" not in body


def test_authorize_by_post_form_works_like_get(http: httpx.Client, state: OracleState, origin: str) -> None:
    verifier, challenge = pkce_pair()
    form = {"response_type": "code", "client_id": SMART_CLIENT_ID, "redirect_uri": CALLBACK, "scope": USER_SCOPES,
            "launch": state.create_launch(state.seeded[CERNER_TEST_TENANT].today[3]), "state": "s",
            "aud": fhir_base(origin) + "/", "code_challenge": challenge, "code_challenge_method": "S256"}
    query = redirect_query(http.post(f"{oauth_path()}/personas/provider/authorize", data=form))
    assert query["state"] == "s"
    assert exchange(http, query["code"], verifier).status_code == 200


def test_pkce_verifier_mismatch_is_refused(http: httpx.Client, state: OracleState) -> None:
    _, code, _ = launch_and_code(http, state)
    refused = exchange(http, code, pkce_pair()[0])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_missing_challenge_is_refused_at_token_when_pkce_is_required(http: httpx.Client, state: OracleState) -> None:
    launch = state.create_launch(state.seeded[CERNER_TEST_TENANT].today[2])
    code = redirect_query(authorize(http, launch))["code"]
    refused = exchange(http, code, None)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_plain_challenge_method_is_refused_by_redirect(http: httpx.Client, state: OracleState) -> None:
    launch = state.create_launch(state.seeded[CERNER_TEST_TENANT].today[2])
    query = redirect_query(authorize(http, launch, code_challenge="a" * 43, code_challenge_method="plain"))
    assert query["error"] == "invalid_request" and query["state"] == "st-123" and "code" not in query


def test_code_is_single_use_and_a_replay_revokes_the_first_token(http: httpx.Client, state: OracleState) -> None:
    appointment_id, code, verifier = launch_and_code(http, state)
    first = exchange(http, code, verifier)
    assert first.status_code == 200
    replay = exchange(http, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    read = http.get(f"/r4/{CERNER_TEST_TENANT}/Appointment/{appointment_id}",
                    headers=bearer(first.json()["access_token"]))
    assert read.status_code == 401


def test_code_expires_after_sixty_seconds(http: httpx.Client, state: OracleState) -> None:
    _, code, verifier = launch_and_code(http, state)
    CLOCK.advance(61)
    assert exchange(http, code, verifier).json()["error"] == "invalid_grant"


def test_token_redirect_uri_must_match_the_authorization_request(http: httpx.Client, state: OracleState) -> None:
    _, code, verifier = launch_and_code(http, state)
    refused = exchange(http, code, verifier, redirect_uri="http://127.0.0.1:7071/other")
    assert refused.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("overrides", [
    {"client_id": "not-registered"},
    {"redirect_uri": "https://attacker.example/steal"},
])
def test_unknown_client_or_unregistered_redirect_shows_a_page_and_never_redirects(
    http: httpx.Client, state: OracleState, overrides: dict[str, str]
) -> None:
    launch = state.create_launch(state.seeded[CERNER_TEST_TENANT].today[2])
    response = authorize(http, launch, **overrides)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("aud", [None, "https://fhir-ehr.cerner.com/r4/" + CERNER_TEST_TENANT, "PROD"])
def test_wrong_or_missing_aud_redirects_with_invalid_audience(
    http: httpx.Client, state: OracleState, origin: str, aud: str | None
) -> None:
    launch = state.create_launch(state.seeded[CERNER_TEST_TENANT].today[2])
    audience = fhir_base(origin, CERNER_PROD_TENANT) if aud == "PROD" else aud
    query = redirect_query(authorize(http, launch, aud=audience))
    assert query["error"] == "invalid_request" and "code" not in query
    assert query["error_uri"].startswith(
        f"{origin}/errors/urn:cerner:error:authorization-server:oauth2:grant:invalid-audience/")
    assert http.get(query["error_uri"]).status_code == 200


def test_launch_is_single_use_and_expires(http: httpx.Client, state: OracleState) -> None:
    today = state.seeded[CERNER_TEST_TENANT].today
    used, stale = state.create_launch(today[2]), state.create_launch(today[3])
    assert "code" in redirect_query(authorize(http, used))
    refusals = [redirect_query(authorize(http, used)), redirect_query(authorize(http, "made-up-launch"))]
    CLOCK.advance(301)
    refusals.append(redirect_query(authorize(http, stale)))
    for query in refusals:
        assert query["error"] == "invalid_request" and "code" not in query
        assert "urn:cerner:error:authorization-server:smart-v1:grant:launch:code-required" in query["error_uri"]


def test_launch_of_one_tenant_is_refused_by_the_other(http: httpx.Client, state: OracleState) -> None:
    launch = state.create_launch(state.seeded[CERNER_PROD_TENANT].today[2], tenant=CERNER_PROD_TENANT)
    query = redirect_query(authorize(http, launch, CERNER_TEST_TENANT))
    assert "launch:code-required" in query["error_uri"]


def test_deny_next_authorization_answers_access_denied_once(http: httpx.Client, state: OracleState) -> None:
    state.deny_next_authorization = True
    denied = redirect_query(authorize(http, state.create_launch(state.seeded[CERNER_TEST_TENANT].today[2])))
    assert denied["error"] == "access_denied"
    assert "code" in redirect_query(authorize(http, state.create_launch(state.seeded[CERNER_TEST_TENANT].today[2])))


def test_user_token_works_only_in_its_own_tenant(http: httpx.Client, state: OracleState) -> None:
    body = user_token(http, state, CERNER_PROD_TENANT)
    own = http.get(f"/r4/{CERNER_PROD_TENANT}/Patient/{body['patient']}", headers=bearer(body["access_token"]))
    other = http.get(f"/r4/{CERNER_TEST_TENANT}/Patient/{body['patient']}", headers=bearer(body["access_token"]))
    assert own.status_code == 200 and other.status_code == 401


# ---- FHIR reads and Cerner's search rules ------------------------------------------------------------------


def test_fhir_needs_a_live_token(http: httpx.Client, state: OracleState) -> None:
    path = f"/r4/{CERNER_TEST_TENANT}/Patient/{state.seeded[CERNER_TEST_TENANT].patients[0]}"
    missing = http.get(path)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    token = system_token(http)
    assert http.get(path, headers=bearer(token)).status_code == 200
    CLOCK.advance(301)
    assert http.get(path, headers=bearer(token)).status_code == 401


def test_unknown_ids_are_404_operation_outcomes(http: httpx.Client) -> None:
    response = http.get(f"/r4/{CERNER_TEST_TENANT}/Appointment/999", headers=bearer(system_token(http)))
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


def test_patients_carry_cerner_quirks(http: httpx.Client, state: OracleState) -> None:
    ids = state.seeded[CERNER_TEST_TENANT].patients
    bundle = http.get(f"/r4/{CERNER_TEST_TENANT}/Patient", params={"_id": ",".join(ids)},
                      headers=bearer(system_token(http))).json()
    patients = [entry["resource"] for entry in bundle["entry"]]
    assert len(patients) == len(ids)
    phones = [t for p in patients for t in p["telecom"] if t["system"] == "phone"]
    assert all(re.fullmatch(r"\d{3}55501\d\d", t["value"]) and isinstance(t["rank"], str) for t in phones)
    assert {t["use"] for t in phones} == {"mobile", "home"}
    assert any(all(t["use"] != "mobile" for t in p["telecom"]) for p in patients)
    languages = {c["code"] for p in patients for c in p["communication"][0]["language"]["coding"]
                 if c["system"] == "urn:ietf:bcp:47"}
    assert languages == {"en", "es", "pt-BR"}


def appointment_search(http: httpx.Client, token: str, params: dict | list) -> httpx.Response:
    return http.get(f"/r4/{CERNER_TEST_TENANT}/Appointment", params=params, headers=bearer(token))


@pytest.mark.parametrize("params", [
    {"location": "32216049"},
    {"patient": "12724066", "location": "32216049", "date": "ge2020-01-01"},
    {"date": "ge2020-01-01"},
    [("location", "32216049"), ("date", "ge2020-01-01"), ("date", "ge2020-02-01")],
    {"location": "32216049", "date": "ge2020-01-01T10:00:00"},
])
def test_appointment_searches_cerner_refuses(http: httpx.Client, params: dict | list) -> None:
    response = appointment_search(http, system_token(http), params)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_appointment_paging_follows_next_links_to_every_match(http: httpx.Client, state: OracleState) -> None:
    seeded = state.seeded[CERNER_TEST_TENANT]
    window = [("date", f"ge{(START - timedelta(days=1)).date()}"), ("date", f"lt{(START + timedelta(days=3)).date()}")]
    token = system_token(http)
    response = appointment_search(http, token, [("location", ",".join(seeded.locations)), *window, ("_count", "3")])
    pages, found = 0, []
    while True:
        assert response.status_code == 200, response.text
        pages += 1
        found += [entry["resource"] for entry in response.json().get("entry", [])]
        next_link = [link["url"] for link in response.json()["link"] if link["relation"] == "next"]
        if not next_link:
            break
        assert "pageContext=" in next_link[0] and "direction=NEXT" in next_link[0]
        response = http.get(next_link[0], headers=bearer(token))
    since, until = (datetime.fromisoformat(value[2:]).replace(tzinfo=UTC) for _, value in window)
    expected = {a["id"] for a in state.all_resources("Appointment")
                if {p["actor"]["reference"] for p in a["participant"]} & {f"Location/{i}" for i in seeded.locations}
                and since <= datetime.fromisoformat(a["start"]) and datetime.fromisoformat(a["end"]) < until}
    assert pages > 1 and {a["id"] for a in found} == expected and len(found) == len(expected)
    assert [a["start"] for a in found] == sorted(a["start"] for a in found)


def test_date_range_keeps_only_appointments_that_end_before_lt(http: httpx.Client, state: OracleState) -> None:
    seeded = state.seeded[CERNER_TEST_TENANT]
    lower, upper = datetime(2031, 3, 4, 9, 0, tzinfo=UTC), datetime(2031, 3, 4, 10, 0, tzinfo=UTC)
    people = {"patient_id": seeded.patients[1], "practitioner_id": seeded.practitioners[1],
              "location_id": seeded.locations[1]}
    inside = state.add_appointment(start=upper - timedelta(minutes=30), end=upper - timedelta(minutes=15), **people)
    overlapping = state.add_appointment(start=upper - timedelta(minutes=10), end=upper + timedelta(minutes=5),
                                        **people)
    cancelled = state.add_appointment(start=lower, end=lower + timedelta(minutes=15), status="cancelled", **people)
    params = [("practitioner", seeded.practitioners[1]), ("date", f"ge{lower.isoformat()}"),
              ("date", f"lt{upper.isoformat()}")]
    ids = {e["resource"]["id"] for e in appointment_search(http, system_token(http), params).json().get("entry", [])}
    assert inside in ids and overlapping not in ids and cancelled in ids
    booked = appointment_search(http, system_token(http), [*params, ("status", "booked")]).json()
    assert {e["resource"]["id"] for e in booked["entry"]} == {inside}


def test_cancel_and_reschedule_bump_the_version(http: httpx.Client, state: OracleState) -> None:
    seeded = state.seeded[CERNER_TEST_TENANT]
    start = START + timedelta(days=5)
    appointment_id = state.add_appointment(patient_id=seeded.patients[0], practitioner_id=seeded.practitioners[0],
                                           location_id=seeded.locations[0], start=start,
                                           end=start + timedelta(minutes=20))
    state.reschedule(appointment_id, start + timedelta(hours=1), start + timedelta(hours=1, minutes=20))
    state.cancel(appointment_id)
    response = http.get(f"/r4/{CERNER_TEST_TENANT}/Appointment/{appointment_id}", headers=bearer(system_token(http)))
    assert response.headers["etag"] == 'W/"3"'
    assert response.json()["status"] == "cancelled" and response.json()["minutesDuration"] == 20


# ---- system accounts ---------------------------------------------------------------------------------------


def test_system_token_by_basic_secret(http: httpx.Client) -> None:
    basic = base64.b64encode(f"{SMART_SYSTEM_CLIENT_ID}:{SMART_SYSTEM_SECRET}".encode()).decode()
    response = http.post(f"{oauth_path()}/token", data={"grant_type": "client_credentials",
                                                        "scope": "system/Appointment.read"},
                         headers={"Authorization": f"Basic {basic}"})
    assert response.json()["expires_in"] == 300 and response.json()["scope"] == "system/Appointment.read"
    assert response.headers["cache-control"] == "no-store"
    wrong = base64.b64encode(f"{SMART_SYSTEM_CLIENT_ID}:nope".encode()).decode()
    refused = http.post(f"{oauth_path()}/token", data={"grant_type": "client_credentials",
                                                       "scope": "system/Appointment.read"},
                        headers={"Authorization": f"Basic {wrong}"})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def client_assertion(origin: str, *, alg: str = "RS384", exp_in: int = 240, jti: str | None = None) -> str:
    claims = {"iss": JWT_CLIENT_ID, "sub": JWT_CLIENT_ID, "aud": f"{origin}{oauth_path()}/token",
              "exp": int(CLOCK().timestamp()) + exp_in, "jti": jti or secrets.token_hex(16)}
    key, kid = (RSA_KEY, "rsa-1") if alg == "RS384" else (EC_KEY, "ec-1")
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


def jwt_token_request(http: httpx.Client, assertion: str, scope: str = "system/Appointment.read") -> httpx.Response:
    return http.post(f"{oauth_path()}/token", data={
        "grant_type": "client_credentials", "scope": scope, "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_system_token_by_signed_client_assertion(
    http: httpx.Client, state: OracleState, origin: str, alg: str
) -> None:
    response = jwt_token_request(http, client_assertion(origin, alg=alg))
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 300
    wanted = state.seeded[CERNER_TEST_TENANT].today[:2]
    search = appointment_search(http, response.json()["access_token"], {"_id": ",".join(wanted)})
    assert [entry["resource"]["id"] for entry in search.json()["entry"]] == wanted


def test_client_assertion_replay_and_far_expiry_are_refused(http: httpx.Client, origin: str) -> None:
    assertion = client_assertion(origin)
    assert jwt_token_request(http, assertion).status_code == 200
    replay = jwt_token_request(http, assertion)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_client"
    too_far = jwt_token_request(http, client_assertion(origin, exp_in=600))
    assert too_far.json()["error"] == "invalid_client"


def test_system_wildcard_scope_is_refused(http: httpx.Client, origin: str) -> None:
    response = jwt_token_request(http, client_assertion(origin), scope="system/*.read")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


# ---- PowerChart, faults, counters --------------------------------------------------------------------------


class LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("data-appointment-id"):
            self.links[found["data-appointment-id"] or ""] = found["href"] or ""


def test_powerchart_lists_todays_appointments_with_working_launch_links(
    http: httpx.Client, state: OracleState, origin: str
) -> None:
    page = http.get("/powerchart")
    assert page.status_code == 200 and "PowerChart — Virtual appointments today" in page.text
    collector = LinkCollector()
    collector.feed(page.text)
    assert set(collector.links) == set(state.seeded[CERNER_TEST_TENANT].today)
    href = collector.links[state.seeded[CERNER_TEST_TENANT].today[4]]
    assert href.startswith(LAUNCH_URL + "?")
    query = {key: values[0] for key, values in parse_qs(urlsplit(href).query).items()}
    assert query["iss"] == fhir_base(origin)
    assert "code" in redirect_query(authorize(http, query["launch"]))
    prod = LinkCollector()
    prod.feed(http.get("/powerchart", params={"tenant": CERNER_PROD_TENANT}).text)
    assert set(prod.links) == set(state.seeded[CERNER_PROD_TENANT].today)


def test_fault_injection_and_request_counts(http: httpx.Client, state: OracleState) -> None:
    token = system_token(http)
    before = state.request_counts["GET /r4/{tenant}/Appointment/{id}"]
    pending = state.faults_pending()
    state.fail_next("/Appointment/4822401", status=503)
    state.delay_next("/Appointment/4822401", 0.3)
    assert state.faults_pending() == pending + 2
    began = time.monotonic()
    failed = http.get(f"/r4/{CERNER_TEST_TENANT}/Appointment/4822401", headers=bearer(token))
    assert state.faults_pending() == pending, "the failure and the delay met their request"
    assert failed.status_code == 503 and time.monotonic() - began >= 0.3
    assert http.get(f"/r4/{CERNER_TEST_TENANT}/Appointment/4822401", headers=bearer(token)).status_code == 200
    assert state.request_counts["GET /r4/{tenant}/Appointment/{id}"] == before + 2


def test_a_switched_tenant_points_elsewhere_rotates_keys_and_records_what_each_host_received(state, origin):
    tenant = state.add_tenant()
    other = origin.replace("localhost", "127.0.0.1")
    state.advertise_elsewhere(tenant, "token", other)
    state.advertise_elsewhere(tenant, "jwks", other)
    discovery = httpx.get(f"{origin}/r4/{tenant}/.well-known/smart-configuration").json()
    assert discovery["token_endpoint"] == f"{other}/tenants/{tenant}/protocols/oauth2/profiles/smart-v1/token"
    assert discovery["jwks_uri"] == f"{other}/tenants/{tenant}/jwk"
    assert discovery["authorization_endpoint"].startswith(f"{origin}/tenants/{tenant}/")

    first = [key["kid"] for key in httpx.get(discovery["jwks_uri"]).json()["keys"]]
    rotated = state.rotate_keys(tenant)
    assert [key["kid"] for key in httpx.get(discovery["jwks_uri"]).json()["keys"]] == [rotated, *first]
    state.rotate_keys(tenant, keep_previous=False)
    assert len(httpx.get(discovery["jwks_uri"]).json()["keys"]) == 1

    granted = httpx.post(discovery["token_endpoint"], data={"grant_type": "client_credentials",
                                                            "scope": "system/Patient.read"},
                         auth=(SMART_SYSTEM_CLIENT_ID, SMART_SYSTEM_SECRET))
    assert granted.status_code == 200
    assert [r.kind for r in state.received_by("127.0.0.1") if r.path.endswith("/token")] == ["basic"]
    assert not [r for r in state.received_by("localhost") if tenant in r.path and r.path.endswith("/token")]


def test_a_switched_tenant_forges_its_next_id_token_once(state):
    tenant = state.add_tenant()
    claims = {"iss": "https://issuer.example/", "aud": SMART_CLIENT_ID, "iat": 1, "exp": 2}
    state.forge_next_id_token(tenant, drop_kid=True, drop_claims=("exp",), set_claims={"azp": "other"})
    forged = state.sign(claims, tenant)
    assert "kid" not in jwt.get_unverified_header(forged)
    assert jwt.decode(forged, options={"verify_signature": False}) == {
        "iss": "https://issuer.example/", "aud": SMART_CLIENT_ID, "iat": 1, "azp": "other"}
    genuine = state.sign(claims, tenant)
    key = jwt.PyJWKSet.from_dict(state.jwks(tenant))[jwt.get_unverified_header(genuine)["kid"]]
    assert jwt.decode(genuine, key.key, algorithms=["RS256"], audience=SMART_CLIENT_ID,
                      options={"verify_exp": False}) == claims


def test_the_most_requests_at_once_are_recorded_per_tenant(http: httpx.Client, state: OracleState) -> None:
    token = system_token(http)
    state.reset_peaks()
    state.hold_together("/Appointment/4822401", parties=3)  # three requests in flight together, then answered
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: http.get(f"/r4/{CERNER_TEST_TENANT}/Appointment/4822401",
                                                   headers=bearer(token)), range(3)))
    assert [answer.status_code for answer in answers] == [200] * 3
    http.get(f"/r4/{CERNER_PROD_TENANT}/metadata")
    assert state.peak_in_flight[CERNER_TEST_TENANT] == 3
    assert state.peak_in_flight[CERNER_PROD_TENANT] == 1
    assert state.in_flight[CERNER_TEST_TENANT] == 0

"""SMART EHR launch: the authorize URL, the code exchange as Cerner receives it, and who launched."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.servers import free_port
from shared.ehr_hosts import UntrustedEhrHost
from shared.errors import DependencyFailed
from shared.smart.discovery import SmartConfiguration, smart_configuration
from shared.smart.ehr_launch import (
    RELAUNCH,
    V1_SCOPES,
    V2_SCOPES,
    LaunchRefused,
    LaunchTokens,
    NotAProvider,
    authorize_url,
    ehr_user_id,
    exchange_code,
    verify_identity,
)
from shared.smart.id_token import IdTokenInvalid
from tests.unit.shared.smart.authorization_server import CLIENT_ID, basic_credentials

ISS = "https://fhir.example/r4/tenant"


@pytest.fixture()
def configuration(server) -> SmartConfiguration:
    """A configuration whose endpoints are on a trusted host (the test server's)."""
    return SmartConfiguration(authorization_endpoint=f"{server.origin}/auth/authorize",
                              token_endpoint=f"{server.origin}/auth/token")


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query, strict_parsing=True).items()}


def test_the_authorize_url_carries_every_parameter_smart_requires(server, configuration):
    url = authorize_url(configuration, client_id="app", redirect_uri="https://c.example/cb", launch="L1", state="S1",
                        nonce="N1", aud=ISS, code_challenge="C1")
    assert url.startswith(f"{server.origin}/auth/authorize?")
    assert query(url) == {"response_type": "code", "client_id": "app", "redirect_uri": "https://c.example/cb",
                          "launch": "L1", "scope": V1_SCOPES, "state": "S1", "nonce": "N1", "aud": ISS,
                          "code_challenge": "C1", "code_challenge_method": "S256"}


def test_without_a_challenge_no_pkce_parameters_and_v2_scopes_when_advertised(server, configuration):
    v2 = configuration.model_copy(update={"capabilities": ["permission-v2"],
                                          "authorization_endpoint": f"{server.origin}/auth/authorize?tenant=t"})
    url = authorize_url(v2, client_id="app", redirect_uri="r", launch="L", state="S", nonce="N", aud=ISS,
                        code_challenge=None)
    params = query(url)
    assert url.startswith(f"{server.origin}/auth/authorize?tenant=t&"), "an endpoint with a query keeps it"
    assert params["scope"] == V2_SCOPES and params["tenant"] == "t"
    assert "code_challenge" not in params and "code_challenge_method" not in params


def test_every_scope_is_named_no_wildcards():
    for scopes in (V1_SCOPES, V2_SCOPES):
        assert "*" not in scopes and {"launch", "openid", "fhirUser"} <= set(scopes.split())


def test_the_launch_context_names_its_appointment():
    tokens = LaunchTokens(access_token="a", fhirContext=[{"reference": "Encounter/1"},
                                                         {"reference": "Appointment/4817517"}])
    assert tokens.appointment_id() == "4817517"
    assert LaunchTokens(access_token="a", fhirContext=[{"reference": "Encounter/1"}]).appointment_id() is None
    assert LaunchTokens(access_token="a").appointment_id() is None


# --- the code exchange, as the token endpoint receives it ------------------------------------------------------


def exchange(server, **overrides):
    options = {"code": "code-1", "redirect_uri": "https://c.example/cb", "client_id": CLIENT_ID,
               "client_secret": "", "code_verifier": "v" * 43, **overrides}
    return exchange_code(smart_configuration(server.fhir_base), **options)


def test_a_public_client_sends_its_id_the_code_and_the_verifier(server):
    server.answer("/auth/token", body={"access_token": "at", "expires_in": 300, "patient": "12724066",
                                       "id_token": "x.y.z"})
    tokens = exchange(server)
    assert (tokens.access_token, tokens.expires_in, tokens.patient, tokens.id_token) == ("at", 300, "12724066", "x.y.z")
    [asked] = server.asked_for("/auth/token")
    assert asked.method == "POST" and asked.authorization == "" and asked.accept == "application/json"
    assert asked.form == {"grant_type": "authorization_code", "code": "code-1", "redirect_uri": "https://c.example/cb",
                          "code_verifier": "v" * 43, "client_id": CLIENT_ID}


def test_a_confidential_client_authenticates_with_basic_and_without_pkce_sends_no_verifier(server):
    exchange(server, client_secret="s3cret", code_verifier=None)
    [asked] = server.asked_for("/auth/token")
    assert basic_credentials(asked.authorization) == (CLIENT_ID, "s3cret")
    assert "client_id" not in asked.form and "code_verifier" not in asked.form


@pytest.mark.parametrize("status", [400, 401])
def test_a_refused_code_is_the_launch_refused_page_with_a_400(server, status):
    server.answer("/auth/token", status, {"error": "invalid_grant"})
    with pytest.raises(LaunchRefused) as raised:
        exchange(server)
    assert (raised.value.status, raised.value.message, raised.value.next_step) == (
        400, "Cerner did not accept this launch (it may have been used already or taken too long).", RELAUNCH)


@pytest.mark.parametrize(("status", "body", "message"), [
    (500, {}, "Cerner's sign-in service answered with an error."),
    (200, "not json", "Cerner's sign-in answer was not understood."),
    (200, {"token_type": "x"}, "Cerner's sign-in answer was not understood."),
])
def test_a_broken_token_endpoint_says_what_went_wrong_and_to_launch_again(server, status, body, message):
    server.answer("/auth/token", status, body)
    with pytest.raises(DependencyFailed) as raised:
        exchange(server)
    assert (raised.value.message, raised.value.next_step) == (message, RELAUNCH)


def test_an_unreachable_token_endpoint_is_named_as_cerners_authorization(server):
    closed = SmartConfiguration(authorization_endpoint=f"{server.origin}/auth/authorize",
                                token_endpoint=f"https://localhost:{free_port()}/auth/token")
    with pytest.raises(DependencyFailed) as raised:
        exchange_code(closed, code="c", redirect_uri="https://c.example/cb", client_id=CLIENT_ID, client_secret="",
                      code_verifier=None)
    assert raised.value.message == "Oracle Health authorization could not be reached."


@pytest.mark.parametrize(("status", "body"), [(500, {}), (403, {}), (200, "not json"), (200, {"token_type": "x"})])
def test_a_broken_token_endpoint_is_a_dependency_failure(server, status, body):
    server.answer("/auth/token", status, body)
    with pytest.raises(DependencyFailed):
        exchange(server)


# --- who launched ----------------------------------------------------------------------------------------------


def test_the_identity_is_verified_against_the_published_issuer_and_keys(server):
    claims = verify_identity(smart_configuration(server.fhir_base), server.sign(fhirUser="Practitioner/7", nonce="n"),
                             CLIENT_ID, nonce="n")
    assert claims["fhirUser"] == "Practitioner/7"
    with pytest.raises(IdTokenInvalid, match="does not belong"):
        verify_identity(smart_configuration(server.fhir_base), server.sign(nonce="other"), CLIENT_ID, nonce="n")


def test_without_a_published_jwks_uri_the_issuers_openid_configuration_names_the_keys(server):
    server.reset(jwks_uri="")
    assert verify_identity(smart_configuration(server.fhir_base), server.sign(), CLIENT_ID, None)["sub"] == "user-1"
    assert server.asked_for("/auth/.well-known/openid-configuration")


def test_a_token_from_another_issuer_than_the_published_one_is_refused_before_any_key_is_read(server):
    configuration = smart_configuration(server.fhir_base)
    with pytest.raises(IdTokenInvalid, match="unexpected issuer"):
        verify_identity(configuration, server.sign(iss=f"{server.origin}/other/"), CLIENT_ID, None)
    assert server.asked_for("/auth/jwks") == []


def test_without_a_published_issuer_only_one_on_the_token_endpoints_host_is_trusted(server):
    server.reset(issuer="")
    configuration = smart_configuration(server.fhir_base)
    assert verify_identity(configuration, server.sign(), CLIENT_ID, None)["sub"] == "user-1"
    with pytest.raises(IdTokenInvalid, match="unexpected issuer"):
        verify_identity(configuration, server.sign(iss="https://evil.example/auth/"), CLIENT_ID, None)


@pytest.mark.parametrize("token", ["", "garbage"])
def test_a_missing_or_malformed_id_token_is_refused(server, token):
    with pytest.raises(IdTokenInvalid):
        verify_identity(smart_configuration(server.fhir_base), token, CLIENT_ID, None)


@pytest.mark.parametrize(("claims", "expected"), [
    ({"fhirUser": "https://fhir.example/r4/tenant/Practitioner/1", "sub": "s"},
     "https://fhir.example/r4/tenant/Practitioner/1"),
    ({"fhirUser": "Practitioner/1"}, "https://fhir.example/r4/tenant/Practitioner/1"),
    ({"fhirUser": "/Practitioner/1"}, "https://fhir.example/r4/tenant/Practitioner/1"),
    ({"fhirUser": "", "sub": "portal-user"}, "portal-user"),
    ({"sub": "portal-user"}, "portal-user"),
])
def test_the_ehr_user_is_fhir_user_made_absolute_else_sub(claims, expected):
    assert ehr_user_id(claims, ISS + "/") == expected
    assert ehr_user_id(claims, ISS) == expected


def test_without_fhir_user_or_sub_nobody_launched():
    with pytest.raises(IdTokenInvalid):
        ehr_user_id({"fhirUser": "", "sub": ""}, ISS)


@pytest.mark.parametrize(("token", "message"), [
    ("", "Cerner did not say who launched the app."),
    ("garbage", "The sign-in answer was malformed."),
])
def test_a_refused_identity_tells_the_provider_what_happened_and_to_launch_again(server, token, message):
    with pytest.raises(IdTokenInvalid) as refused:
        verify_identity(smart_configuration(server.fhir_base), token, CLIENT_ID, None)
    assert (refused.value.message, refused.value.next_step) == (message, RELAUNCH)


def test_a_token_from_an_unexpected_issuer_tells_the_provider_to_launch_again(server):
    with pytest.raises(IdTokenInvalid) as refused:
        verify_identity(smart_configuration(server.fhir_base), server.sign(iss=f"{server.origin}/other/"), CLIENT_ID,
                        None)
    assert (refused.value.message, refused.value.next_step) == (
        "The sign-in answer came from an unexpected issuer.", RELAUNCH)


@pytest.mark.parametrize(("fhir_user", "persona"), [
    ("Patient/12724066", "Patient"),
    ("https://fhir.example/r4/tenant/RelatedPerson/5", "RelatedPerson"),
    ("Practitioner", "someone else"),
    ("Device2/1", "someone else"),
    ("x/" + "P" * 40 + "/1", "P" * 32),
])
def test_a_launch_as_someone_other_than_a_practitioner_names_who_and_what_to_do(fhir_user, persona):
    with pytest.raises(NotAProvider) as refused:
        ehr_user_id({"fhirUser": fhir_user, "sub": "s"}, ISS)
    assert refused.value.message == (
        f"Cerner says this launch was made as {persona}, not as a provider (Practitioner). Teams virtual "
        "appointments start from PowerChart, signed in as a provider.")
    assert refused.value.next_step == "Sign in to PowerChart with your provider account and click Teams again."


def test_nobody_launched_tells_the_provider_to_launch_again():
    with pytest.raises(IdTokenInvalid) as refused:
        ehr_user_id({"fhirUser": "", "sub": ""}, ISS)
    assert (refused.value.message, refused.value.next_step) == ("Cerner did not say who launched the app.", RELAUNCH)


def test_only_an_appointment_reference_in_the_launch_context_names_the_appointment():
    tokens = LaunchTokens(access_token="a", fhirContext=[{"type": "Patient"}, {"reference": "Appointment/4822401"}])
    assert tokens.appointment_id() == "4822401"
    assert LaunchTokens(access_token="a", fhirContext=[{"reference": None}]).appointment_id() is None


def untrusted(what: str) -> str:
    """What the administrator reads when an address the EHR gave is not on a trusted host."""
    return (f"The Cerner environment's {what} is on evil.example, which is not a trusted Oracle Health host, so the "
            "connector did not contact it.")


def test_each_untrusted_address_of_a_launch_is_named_by_what_it_is(server):
    evil = SmartConfiguration(authorization_endpoint="https://evil.example/authorize",
                              token_endpoint="https://evil.example/token", issuer="https://evil.example/auth/")
    with pytest.raises(UntrustedEhrHost, match=f"^{re.escape(untrusted('authorization endpoint'))}$"):
        authorize_url(evil, client_id="app", redirect_uri="r", launch="L", state="S", nonce="N", aud=ISS,
                      code_challenge=None)
    with pytest.raises(UntrustedEhrHost, match=f"^{re.escape(untrusted('token endpoint'))}$"):
        exchange_code(evil, code="c", redirect_uri="r", client_id=CLIENT_ID, client_secret="s", code_verifier=None)
    with pytest.raises(UntrustedEhrHost, match=f"^{re.escape(untrusted('id_token issuer'))}$"):
        verify_identity(evil, server.sign(iss="https://evil.example/auth/"), CLIENT_ID, None)
    assert server.asked == [], "nothing was sent anywhere"

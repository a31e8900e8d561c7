"""SMART configuration, OpenID configuration and JWKS: read over https, cached, refreshed on demand."""

from __future__ import annotations

import re

import pytest

from sandbox.servers import free_port
from shared.ehr_hosts import UntrustedEhrHost
from shared.errors import DependencyFailed
from shared.smart.discovery import SmartConfiguration, clear_caches, jwks, openid_configuration, smart_configuration
from tests.unit.shared.smart.authorization_server import OTHER_KEY, public_jwk

SMART = "/r4/tenant/.well-known/smart-configuration"


def test_the_configuration_is_read_once_and_then_cached(server):
    first = smart_configuration(server.fhir_base)
    assert first.token_endpoint == f"{server.origin}/auth/token" and first.issuer == server.issuer
    assert smart_configuration(server.fhir_base + "") is first
    assert len(server.asked_for(SMART)) == 1
    clear_caches()
    smart_configuration(server.fhir_base)
    assert len(server.asked_for(SMART)) == 2


def test_a_trailing_slash_on_the_base_url_reads_the_same_document(server):
    assert smart_configuration(server.fhir_base + "/").token_endpoint == f"{server.origin}/auth/token"
    assert [a.path for a in server.asked] == [SMART]


@pytest.mark.parametrize(("methods", "pkce"), [(["S256"], True), (["plain", "S256"], True), (["plain"], False),
                                               ([], True)])
def test_pkce_unless_the_server_lists_its_methods_without_s256(server, methods, pkce):
    server.reset(code_challenge_methods_supported=methods)
    assert smart_configuration(server.fhir_base).pkce is pkce


@pytest.mark.parametrize(("capabilities", "v2"), [
    (["permission-v2"], True), (["permission-v1", "permission-v2"], False), (["permission-v1"], False), ([], False),
])
def test_v2_scopes_only_when_v2_alone_is_advertised(server, capabilities, v2):
    server.reset(capabilities=capabilities)
    assert smart_configuration(server.fhir_base).scopes_v2 is v2


@pytest.mark.parametrize(("status", "body"), [(404, {"error": "x"}), (500, {}), (200, "not json"),
                                              (200, {"authorization_endpoint": "https://x/a"})])
def test_an_unusable_configuration_is_a_dependency_failure_naming_what_to_check(server, status, body):
    server.answer(SMART, status, body)
    with pytest.raises(DependencyFailed) as raised:
        smart_configuration(server.fhir_base)
    assert raised.value.message == "The Cerner environment did not publish a valid SMART configuration."
    assert raised.value.next_step == "Ask IT to check that the FHIR base URL is the R4 secure endpoint."


def test_configurations_are_asked_for_as_json(server):
    smart_configuration(server.fhir_base)
    openid_configuration(server.issuer)
    assert [(a.path, a.accept) for a in server.asked] == [(SMART, "application/json"), (
        "/auth/.well-known/openid-configuration", "application/json")]


def test_an_unreachable_fhir_server_is_named_as_cerners_authorization(server):
    with pytest.raises(DependencyFailed) as raised:
        smart_configuration(f"https://localhost:{free_port()}/r4/tenant")
    assert raised.value.message == "Oracle Health authorization could not be reached."


def test_openid_configuration_is_read_under_the_issuer(server):
    assert openid_configuration(server.issuer).jwks_uri == f"{server.origin}/auth/jwks"
    server.answer("/auth/.well-known/openid-configuration", 500, {})
    assert openid_configuration(server.issuer).jwks_uri.endswith("/auth/jwks"), "cached"
    clear_caches()
    with pytest.raises(DependencyFailed):
        openid_configuration(server.issuer)


def test_keys_are_cached_and_refresh_reads_them_again(server):
    uri = f"{server.origin}/auth/jwks"
    assert [k.key_id for k in jwks(uri).keys] == ["k1"]
    jwks(uri)
    assert len(server.asked_for("/auth/jwks")) == 1
    jwks(uri, refresh=True)
    assert len(server.asked_for("/auth/jwks")) == 2


@pytest.mark.parametrize(("status", "body"), [(500, {}), (200, "not json"), (200, {"keys": "nope"})])
def test_unreadable_keys_are_a_dependency_failure(server, status, body):
    server.answer("/auth/jwks", status, body)
    with pytest.raises(DependencyFailed) as raised:
        jwks(f"{server.origin}/auth/jwks")
    assert raised.value.message == "The sign-in service's signing keys could not be read."


def test_each_jwks_uri_has_its_own_keys_and_its_own_refresh_allowance(server):
    other = f"{server.origin}/other/jwks"
    server.answer("/other/jwks", body={"keys": [public_jwk(OTHER_KEY, "o1")]})
    assert [k.key_id for k in jwks(f"{server.origin}/auth/jwks").keys] == ["k1"]
    assert [k.key_id for k in jwks(other).keys] == ["o1"], "another issuer's keys are never used for this one"
    jwks(f"{server.origin}/auth/jwks", refresh=True)
    jwks(other, refresh=True)
    assert len(server.asked_for("/other/jwks")) == 2, "forged kids against one issuer do not delay another's rotation"


def test_the_endpoints_a_configuration_names_are_listed_by_what_they_are():
    configuration = SmartConfiguration(authorization_endpoint="https://a.example/authorize",
                                       token_endpoint="https://t.example/token", jwks_uri="https://k.example/jwks")
    assert configuration.endpoints() == {"authorization endpoint": "https://a.example/authorize",
                                         "token endpoint": "https://t.example/token",
                                         "JWKS URI": "https://k.example/jwks"}, "no issuer published: none checked"
    assert SmartConfiguration(authorization_endpoint="https://a.example/authorize", token_endpoint="https://t.example/token",
                              issuer="https://i.example/").endpoints()["issuer"] == "https://i.example/"


def test_a_forced_refresh_of_the_keys_reads_them_at_most_once_a_minute(server):
    uri = f"{server.origin}/auth/jwks"
    jwks(uri, refresh=True)
    jwks(uri, refresh=True)
    jwks(uri, refresh=True)
    assert len(server.asked_for("/auth/jwks")) == 1, "forged kids must not make the connector hammer Cerner"


def test_each_issuer_has_its_own_openid_configuration(server):
    server.answer("/other/.well-known/openid-configuration",
                  body={"issuer": f"{server.origin}/other/", "jwks_uri": f"{server.origin}/other/jwks"})
    assert openid_configuration(server.issuer).jwks_uri == f"{server.origin}/auth/jwks"
    assert openid_configuration(f"{server.origin}/other/").jwks_uri == f"{server.origin}/other/jwks", \
        "another issuer's keys are never used for this one"


def test_an_unreadable_openid_configuration_says_so(server):
    server.answer("/auth/.well-known/openid-configuration", 500, {})
    message = "The sign-in service's OpenID configuration could not be read."
    with pytest.raises(DependencyFailed, match=f"^{re.escape(message)}$") as raised:
        openid_configuration(server.issuer)
    assert raised.value.next_step == ""


@pytest.mark.parametrize(("read", "what"), [
    (lambda: smart_configuration("https://evil.example/r4/tenant"), "FHIR base URL"),
    (lambda: openid_configuration("https://evil.example/auth/"), "id_token issuer"),
    (lambda: jwks("https://evil.example/auth/jwks"), "JWKS URI"),
])
def test_an_untrusted_address_is_named_by_what_it_is(server, read, what):
    message = (f"The Cerner environment's {what} is on evil.example, which is not a trusted Oracle Health host, so "
               "the connector did not contact it.")
    with pytest.raises(UntrustedEhrHost, match=f"^{re.escape(message)}$"):
        read()


def test_an_unreachable_jwks_uri_is_named_as_cerners_authorization(server):
    with pytest.raises(DependencyFailed) as raised:
        jwks(f"https://localhost:{free_port()}/auth/jwks")
    assert raised.value.message == "Oracle Health authorization could not be reached."

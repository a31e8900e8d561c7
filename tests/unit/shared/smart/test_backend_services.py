"""SMART Backend Services: a client assertion (private_key_jwt, RS384 or ES384) or Cerner's basic system secret,
the system scopes, and the token reused until shortly before it expires."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sandbox.servers import free_port
from shared.ehr_hosts import UntrustedEhrHost
from shared.errors import DependencyFailed
from shared.runtime import reset_process_state
from shared.smart.backend_services import ASSERTION_TYPE, V1_SYSTEM_SCOPES, V2_SYSTEM_SCOPES, system_token
from tests.unit.shared.smart.authorization_server import basic_credentials

TOKEN = "/auth/token"


def pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture()
def system_account(monkeypatch, server):
    """The system account's id; a test adds a private key or a secret."""
    monkeypatch.setenv("SMART_SYSTEM_CLIENT_ID", "system-app")
    monkeypatch.setenv("SMART_SYSTEM_KEY_ID", "sys-k1")
    monkeypatch.setenv("SMART_SYSTEM_PRIVATE_KEY", "")
    monkeypatch.setenv("SMART_SYSTEM_SECRET", "")
    reset_process_state()
    yield monkeypatch
    monkeypatch.undo()
    reset_process_state()


def use(account, **settings: str) -> None:
    for name, value in settings.items():
        account.setenv(name, value)
    reset_process_state()


def test_with_a_secret_the_system_account_authenticates_with_basic_and_asks_v1_scopes(server, system_account):
    use(system_account, SMART_SYSTEM_SECRET="sys-secret")
    assert system_token(server.fhir_base) == "at-1"
    [asked] = server.asked_for(TOKEN)
    assert basic_credentials(asked.authorization) == ("system-app", "sys-secret")
    assert asked.form == {"grant_type": "client_credentials", "scope": V1_SYSTEM_SCOPES}
    assert asked.accept == "application/json"


def test_v2_scopes_when_the_server_advertises_only_v2(server, system_account):
    server.reset(capabilities=["permission-v2"])
    use(system_account, SMART_SYSTEM_SECRET="sys-secret")
    system_token(server.fhir_base)
    assert server.asked_for(TOKEN)[0].form["scope"] == V2_SYSTEM_SCOPES


@pytest.mark.parametrize(("key", "algorithm"), [
    (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS384"),
    (ec.generate_private_key(ec.SECP384R1()), "ES384"),
])
def test_with_a_private_key_a_short_lived_single_use_assertion_goes_to_the_token_endpoint(server, system_account, key,
                                                                                       algorithm):
    server.reset(token_endpoint_auth_methods_supported=["private_key_jwt", "client_secret_basic"])
    use(system_account, SMART_SYSTEM_PRIVATE_KEY=pem(key), SMART_SYSTEM_SECRET="not-used-when-assertions-are-offered")
    system_token(server.fhir_base)
    [asked] = server.asked_for(TOKEN)
    assert asked.authorization == "", "no secret travels with a client assertion"
    assert asked.form["client_assertion_type"] == ASSERTION_TYPE and asked.form["grant_type"] == "client_credentials"
    assertion = asked.form["client_assertion"]
    header = jwt.get_unverified_header(assertion)
    assert (header["alg"], header["kid"], header["typ"]) == (algorithm, "sys-k1", "JWT")
    claims = jwt.decode(assertion, key.public_key(), algorithms=[algorithm], audience=f"{server.origin}/auth/token")
    assert claims["iss"] == claims["sub"] == "system-app"
    assert claims["exp"] - claims["iat"] == 240 and abs(claims["iat"] - time.time()) < 60
    use(system_account)
    system_token(server.fhir_base, refresh=True)
    assert jwt.decode(server.asked_for(TOKEN)[1].form["client_assertion"], options={"verify_signature": False})[
        "jti"] != claims["jti"], "every assertion is new"


def test_a_key_and_a_secret_use_the_secret_where_assertions_are_not_offered_and_the_key_where_nothing_else_is(
        server, system_account):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    use(system_account, SMART_SYSTEM_PRIVATE_KEY=pem(key), SMART_SYSTEM_SECRET="sys-secret")
    system_token(server.fhir_base)
    assert basic_credentials(server.asked_for(TOKEN)[0].authorization) == ("system-app", "sys-secret")
    use(system_account, SMART_SYSTEM_SECRET="")
    system_token(server.fhir_base, refresh=True)
    assert server.asked_for(TOKEN)[1].form["client_assertion_type"] == ASSERTION_TYPE


def test_the_token_is_reused_until_thirty_seconds_before_it_expires(server, system_account):
    use(system_account, SMART_SYSTEM_SECRET="s")
    assert system_token(server.fhir_base) == system_token(server.fhir_base) == "at-1"
    assert len(server.asked_for(TOKEN)) == 1
    server.answer(TOKEN, body={"access_token": "at-2", "expires_in": 30})
    assert system_token(server.fhir_base, refresh=True) == "at-2"
    server.answer(TOKEN, body={"access_token": "at-3", "expires_in": 570})
    assert system_token(server.fhir_base) == "at-3", "a token within 30 s of expiry is not reused"
    assert system_token(server.fhir_base) == "at-3"
    assert len(server.asked_for(TOKEN)) == 3


def test_without_expires_in_a_token_counts_as_five_minutes(server, system_account):
    use(system_account, SMART_SYSTEM_SECRET="s")
    server.answer(TOKEN, body={"access_token": "at-short"})
    assert system_token(server.fhir_base) == system_token(server.fhir_base) == "at-short"
    assert len(server.asked_for(TOKEN)) == 1


@pytest.mark.parametrize("status", [400, 401, 500])
def test_a_refused_system_account_is_a_dependency_failure_naming_the_account(server, system_account, status):
    use(system_account, SMART_SYSTEM_SECRET="wrong")
    server.answer(TOKEN, status, {"error": "invalid_client"})
    with pytest.raises(DependencyFailed) as raised:
        system_token(server.fhir_base)
    assert raised.value.message == "Cerner refused the connector's system account."
    assert raised.value.next_step == "Ask IT to check the system account and its scopes in Cerner."


def test_an_unreachable_token_endpoint_is_named_as_cerners_authorization(server, system_account):
    use(system_account, SMART_SYSTEM_SECRET="s")
    server.reset(token_endpoint=f"https://localhost:{free_port()}/auth/token")
    with pytest.raises(DependencyFailed) as raised:
        system_token(server.fhir_base)
    assert raised.value.message == "Oracle Health authorization could not be reached."


def test_each_fhir_server_gets_its_own_token_and_never_another_servers(server, system_account):
    use(system_account, SMART_SYSTEM_SECRET="s")
    other_base = f"{server.origin}/r4/other-tenant"
    server.answer("/r4/other-tenant/.well-known/smart-configuration", body={
        "authorization_endpoint": f"{server.origin}/other-auth/authorize",
        "token_endpoint": f"{server.origin}/other-auth/token"})
    server.answer("/other-auth/token", body={"access_token": "at-other", "expires_in": 570})
    assert system_token(server.fhir_base) == "at-1"
    assert system_token(other_base) == "at-other", "a token cached for one FHIR server is not sent to another"
    assert system_token(server.fhir_base) == "at-1"
    assert (len(server.asked_for(TOKEN)), len(server.asked_for("/other-auth/token"))) == (1, 1)


def test_an_untrusted_token_endpoint_is_named_by_what_it_is(server, system_account):
    use(system_account, SMART_SYSTEM_SECRET="s")
    server.reset(token_endpoint="https://evil.example/token")
    with pytest.raises(UntrustedEhrHost) as raised:
        system_token(server.fhir_base)
    assert raised.value.message == ("The Cerner environment's token endpoint is on evil.example, which is not a "
                                    "trusted Oracle Health host, so the connector did not contact it.")

"""id_token validation (OpenID Connect Core 3.1.3.7): signature by the JWKS key named in the header, issuer,
audience, expiry with a minute's leeway, required claims, nonce, and key rotation."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
import pytest

from shared.ehr_hosts import UntrustedEhrHost
from shared.errors import DependencyFailed
from shared.runtime import reset_process_state
from shared.smart.id_token import NEXT_STEP, IdTokenInvalid, validate_id_token
from tests.unit.shared.smart.authorization_server import CLIENT_ID, OTHER_KEY, SIGNING_KEY, public_jwk


def validate(server, token: str, **options):
    return validate_id_token(token, jwks_uri=f"{server.origin}/auth/jwks", issuer=server.issuer, audience=CLIENT_ID,
                             **options)


def test_a_genuine_token_gives_its_claims(server):
    assert validate(server, server.sign(fhirUser="Practitioner/1"))["fhirUser"] == "Practitioner/1"


@pytest.mark.parametrize("algorithm", ["HS256", "none", "PS256"])
def test_only_the_accepted_asymmetric_algorithms_are_tried(server, algorithm):
    claims = {"iss": server.issuer, "aud": CLIENT_ID, "iat": int(time.time()), "exp": int(time.time()) + 300}
    key = {"HS256": "a-shared-secret-of-enough-length-32b", "none": None, "PS256": SIGNING_KEY}[algorithm]
    token = jwt.encode(claims, key, algorithm=algorithm, headers={"kid": "k1"})
    with pytest.raises(IdTokenInvalid, match="accepted algorithm"):
        validate(server, token)
    assert server.asked_for("/auth/jwks") == [], "refused before any key is fetched"


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(server):
    with pytest.raises(IdTokenInvalid, match="could not be verified"):
        validate(server, server.sign(key=OTHER_KEY))


def test_an_unknown_kid_refreshes_the_keys_once_then_is_refused(server):
    validate(server, server.sign())  # keys cached
    with pytest.raises(IdTokenInvalid, match="unknown key"):
        validate(server, server.sign(kid="k9"))
    assert len(server.asked_for("/auth/jwks")) == 2, "one refresh, no more"


def test_a_rotated_key_is_found_after_one_refresh(server):
    validate(server, server.sign())
    server.answer("/auth/jwks", body={"keys": [public_jwk(SIGNING_KEY, "k1"), public_jwk(OTHER_KEY, "k2")]})
    assert validate(server, server.sign(key=OTHER_KEY, kid="k2"))["sub"] == "user-1"


def test_a_token_without_kid_is_checked_against_the_only_key_and_never_a_guess_among_several(server):
    assert validate(server, server.sign(kid=None))["sub"] == "user-1"
    with pytest.raises(IdTokenInvalid):
        validate(server, server.sign(key=OTHER_KEY, kid=None))
    server.answer("/auth/jwks", body={"keys": [public_jwk(SIGNING_KEY, "k1"), public_jwk(OTHER_KEY, "k2")]})
    validate(server, server.sign(kid="k2", key=OTHER_KEY))  # refreshes the keys: now two
    with pytest.raises(IdTokenInvalid, match="does not name its signing key"):
        validate(server, server.sign(kid=None))


def test_several_audiences_need_azp_naming_us(server):
    assert validate(server, server.sign(aud=[CLIENT_ID, "other"], azp=CLIENT_ID))["azp"] == CLIENT_ID


@dataclass(frozen=True)
class FromNow:
    """A time claim this many seconds from when the test runs (not from when the cases were collected)."""

    seconds: int


ANOTHER_APPLICATION = "The sign-in answer was issued to another application."


@pytest.mark.parametrize(("claims", "why"), [
    ({"aud": "someone-else"}, ANOTHER_APPLICATION),
    ({"iss": "https://evil.example/auth/"}, "The sign-in answer came from an unexpected issuer."),
    ({"exp": FromNow(-120)}, "The sign-in answer has expired."),
    ({"iat": None}, "The sign-in answer has no iat claim."),
    ({"exp": None}, "The sign-in answer has no exp claim."),
    ({"aud": None}, "The sign-in answer has no aud claim."),
    ({"nbf": FromNow(600)}, "The sign-in answer is not valid yet (check the server clocks)."),
    ({"aud": [CLIENT_ID, "other"]}, ANOTHER_APPLICATION),
    ({"azp": "other"}, ANOTHER_APPLICATION),
])
def test_audience_issuer_expiry_and_required_claims_are_checked(server, claims, why):
    now = int(time.time())
    claims = {name: now + value.seconds if isinstance(value, FromNow) else value for name, value in claims.items()}
    with pytest.raises(IdTokenInvalid) as raised:
        validate(server, server.sign(**claims))
    assert (raised.value.status, raised.value.message, raised.value.next_step) == (401, why, NEXT_STEP)


def refusal(server, token: str, **options) -> tuple[str, str]:
    """What the provider is told when the token is refused: the message and the next step."""
    with pytest.raises(IdTokenInvalid) as raised:
        validate(server, token, **options)
    return raised.value.message, raised.value.next_step


def test_each_refusal_names_its_reason_and_tells_the_provider_to_launch_again(server):
    hs256 = jwt.encode({"iss": server.issuer}, "a-shared-secret-of-enough-length-32b", algorithm="HS256",
                       headers={"kid": "k1"})
    server.answer("/auth/jwks", body={"keys": [public_jwk(SIGNING_KEY, "k1"), public_jwk(OTHER_KEY, "k2")]})
    assert refusal(server, server.sign(kid=None)) == ("The sign-in answer does not name its signing key.", NEXT_STEP)
    assert refusal(server, "not.a.jwt") == ("The sign-in answer was malformed.", NEXT_STEP)
    assert refusal(server, hs256) == ("The sign-in answer was not signed with an accepted algorithm.", NEXT_STEP)
    assert refusal(server, server.sign(kid="k9")) == ("The sign-in answer was signed with an unknown key.", NEXT_STEP)
    assert refusal(server, server.sign(key=OTHER_KEY)) == ("The sign-in answer could not be verified.", NEXT_STEP)
    assert refusal(server, server.sign(nonce="n-2"), nonce="n-1") == (
        "The sign-in answer does not belong to this sign-in.", NEXT_STEP)


def test_microsofts_keys_are_read_without_the_ehr_host_check(server, monkeypatch):
    monkeypatch.setenv("TRUSTED_EHR_HOSTS", "fhir.example")  # the keys' host is not an Oracle Health host
    reset_process_state()
    with pytest.raises(UntrustedEhrHost, match="JWKS URI"):
        validate(server, server.sign())
    assert server.asked_for("/auth/jwks") == [], "an EHR id_token's keys are read from trusted EHR hosts only"
    assert validate(server, server.sign(), system="entra")["sub"] == "user-1", "Entra's keys are Microsoft's"
    with pytest.raises(UntrustedEhrHost, match="JWKS URI"):
        validate(server, server.sign(kid=None))
    assert validate(server, server.sign(kid=None), system="entra")["sub"] == "user-1", "with or without a kid"


def test_an_ehr_id_tokens_keys_are_never_read_from_a_private_address(server, monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_FHIR_HOSTS", "false")  # the keys' host, localhost, is a loopback address
    reset_process_state()
    with pytest.raises(DependencyFailed) as raised:
        validate(server, server.sign())
    assert raised.value.message == ("Oracle Health authorization resolves to a private or special address, so the "
                                    "connector did not call it.")
    assert server.asked == []


def test_a_minute_of_clock_skew_is_forgiven(server):
    assert validate(server, server.sign(exp=int(time.time()) - 30))["sub"] == "user-1"


def test_the_nonce_must_match_when_one_was_sent(server):
    assert validate(server, server.sign(nonce="n-1"), nonce="n-1")["nonce"] == "n-1"
    with pytest.raises(IdTokenInvalid, match="does not belong"):
        validate(server, server.sign(nonce="n-2"), nonce="n-1")
    with pytest.raises(IdTokenInvalid, match="does not belong"):
        validate(server, server.sign(), nonce="n-1")
    assert validate(server, server.sign(nonce="anything"))["sub"] == "user-1", "no nonce sent, none checked"


def test_a_malformed_token_is_refused(server):
    with pytest.raises(IdTokenInvalid, match="malformed"):
        validate(server, "not.a.jwt")

"""id_token validation (OpenID Connect Core 3.1.3.7): signature by the JWKS key named in the header, issuer,
audience, expiry with a minute's leeway, required claims, nonce, and key rotation."""

from __future__ import annotations

import time

import jwt
import pytest

from shared.smart.id_token import IdTokenInvalid, validate_id_token
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


@pytest.mark.parametrize(("claims", "why"), [
    ({"aud": "someone-else"}, "another application"),
    ({"iss": "https://evil.example/auth/"}, "unexpected issuer"),
    ({"exp": int(time.time()) - 120}, "expired"),
    ({"iat": None}, "no iat claim"),
    ({"exp": None}, "no exp claim"),
    ({"aud": None}, "no aud claim"),
    ({"nbf": int(time.time()) + 600}, "not valid yet"),
    ({"aud": [CLIENT_ID, "other"]}, "another application"),
    ({"azp": "other"}, "another application"),
])
def test_audience_issuer_expiry_and_required_claims_are_checked(server, claims, why):
    with pytest.raises(IdTokenInvalid, match=why) as raised:
        validate(server, server.sign(**claims))
    assert raised.value.status == 401 and "launch again" in raised.value.next_step


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

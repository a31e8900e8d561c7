"""PKCE S256 (RFC 7636) and launch state: the RFC's own example, length and entropy."""

from __future__ import annotations

import string

from shared.smart.pkce import challenge, new_nonce, new_state, new_verifier

URL_SAFE = set(string.ascii_letters + string.digits + "-_")


def test_the_challenge_is_the_rfc_7636_example():
    assert challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_verifiers_are_43_url_safe_characters_and_never_repeat():
    verifiers = {new_verifier() for _ in range(200)}
    assert len(verifiers) == 200
    assert all(len(v) == 43 and set(v) <= URL_SAFE for v in verifiers)


def test_state_has_at_least_128_bits_and_never_repeats():
    states = {new_state() for _ in range(200)}
    assert len(states) == 200
    assert all(len(s) >= 22 and set(s) <= URL_SAFE for s in states)


def test_nonces_have_256_bits_and_never_repeat():
    nonces = {new_nonce() for _ in range(200)}
    assert len(nonces) == 200
    assert all(len(n) == 43 and set(n) <= URL_SAFE for n in nonces)

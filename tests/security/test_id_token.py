"""Forged id_tokens through the real callback: the Oracle stand-in issues them, the app refuses each for its reason.

Every refusal is a 401 (403 for a patient persona) naming the failed check, and leaves nothing behind: no visit,
no Cerner session cookie, no EHR user linked, no Microsoft sign-in started.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.launching import launch_at, linked_ehr_users
from tests.security.conftest import OTHER_HOST, assert_refused_page


@pytest.fixture()
def no_side_effect(entra, accounts, cerner):
    """After the test: no EHR user linked at this endpoint and no Microsoft sign-in started."""
    sign_ins = len(entra.sign_ins)
    yield
    assert linked_ehr_users(accounts, cerner) == []
    assert len(entra.sign_ins) == sign_ins


def forged_launch(sandbox, oracle, cerner, **forgery):
    oracle.forge_next_id_token(cerner.tenant, **forgery)
    return launch_at(sandbox, oracle, cerner)


def test_issuer_on_another_host_is_refused(sandbox, oracle, cerner, no_side_effect):
    """id_token whose iss names the same path on another (untrusted) host."""
    issuer = f"{cerner.other_origin}/tenants/{cerner.tenant}/oidc/idsps/{cerner.tenant}/"
    response = forged_launch(sandbox, oracle, cerner, set_claims={"iss": issuer})
    assert_refused_page(response, 401, "The sign-in answer came from an unexpected issuer.")
    assert oracle.received_by(OTHER_HOST) == []


def test_unknown_kid_is_refused_after_one_refetch(sandbox, oracle, cerner, no_side_effect):
    """id_token signed by a stranger's key under a made-up kid."""
    response = forged_launch(sandbox, oracle, cerner, stranger_key=True, kid="made-up-kid")
    assert_refused_page(response, 401, "The sign-in answer was signed with an unknown key.")


def test_unknown_kids_cannot_make_the_app_refetch_the_jwks_more_than_once_a_minute(sandbox, oracle, cerner, entra,
                                                                                   signed_in_provider):
    """A stream of id_tokens with unknown kids, to make the connector hammer Cerner's JWKS."""
    first = launch_at(sandbox, oracle, cerner)
    assert first.status_code == 200, first.text[:500]
    oracle.rotate_keys(cerner.tenant)  # a genuine rotation: the new kid is unknown, one refetch finds it
    rotated = launch_at(sandbox, oracle, cerner)
    assert rotated.status_code == 200, rotated.text[:500]
    fetches = len([r for r in oracle.received if r.kind == "jwks" and cerner.tenant in r.path])
    assert fetches == 2
    for attempt in range(3):
        response = forged_launch(sandbox, oracle, cerner, stranger_key=True, kid=f"made-up-{attempt}")
        assert_refused_page(response, 401, "The sign-in answer was signed with an unknown key.")
    assert len([r for r in oracle.received if r.kind == "jwks" and cerner.tenant in r.path]) == fetches


def test_missing_kid_is_refused_when_the_jwks_has_several_keys(sandbox, oracle, cerner, no_side_effect):
    """id_token without kid while the JWKS lists two keys (the app must not try them in turn)."""
    oracle.rotate_keys(cerner.tenant, keep_previous=True)
    response = forged_launch(sandbox, oracle, cerner, drop_kid=True)
    assert_refused_page(response, 401, "The sign-in answer does not name its signing key.")


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_id_token_without_exp_or_iat_is_refused(sandbox, oracle, cerner, no_side_effect, claim):
    """id_token without an expiry or issue time (a token that would be valid forever)."""
    response = forged_launch(sandbox, oracle, cerner, drop_claims=(claim,))
    assert_refused_page(response, 401, f"The sign-in answer has no {claim} claim.")


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_id_token_from_the_future_is_refused(sandbox, oracle, cerner, no_side_effect, claim):
    """id_token whose nbf or iat lies ten minutes ahead, beyond the 60-second leeway."""
    later = int(time.time()) + 600
    claims = {claim: later, "exp": later + 300}
    response = forged_launch(sandbox, oracle, cerner, set_claims=claims)
    assert_refused_page(response, 401, "The sign-in answer is not valid yet")


def test_expired_id_token_beyond_the_leeway_is_refused(sandbox, oracle, cerner, no_side_effect):
    """Replay of an id_token that expired two minutes ago (leeway is one minute)."""
    now = int(time.time())
    response = forged_launch(sandbox, oracle, cerner, set_claims={"iat": now - 420, "exp": now - 120})
    assert_refused_page(response, 401, "The sign-in answer has expired.")


def test_an_id_token_that_is_not_a_jwt_is_refused(sandbox, oracle, cerner, no_side_effect):
    """Token response whose id_token is not a JWT at all."""
    response = forged_launch(sandbox, oracle, cerner, raw="not-a-jwt")
    assert_refused_page(response, 401, "The sign-in answer was malformed.")


def test_id_token_of_another_sign_in_is_refused_by_its_nonce(sandbox, oracle, cerner, no_side_effect):
    """id_token carrying another launch's nonce (a token injected from another session)."""
    response = forged_launch(sandbox, oracle, cerner, set_claims={"nonce": "nonce-of-another-launch"})
    assert_refused_page(response, 401, "The sign-in answer does not belong to this sign-in.")


def test_id_token_without_the_nonce_is_refused(sandbox, oracle, cerner, no_side_effect):
    """id_token that drops the nonce the launch sent."""
    response = forged_launch(sandbox, oracle, cerner, drop_claims=("nonce",))
    assert_refused_page(response, 401, "The sign-in answer does not belong to this sign-in.")


def test_id_token_for_another_authorized_party_is_refused(sandbox, oracle, cerner, no_side_effect):
    """id_token whose azp names another client (a token obtained by another app and replayed to us)."""
    response = forged_launch(sandbox, oracle, cerner, set_claims={"azp": "another-smart-app"})
    assert_refused_page(response, 401, "The sign-in answer was issued to another application.")


def test_patient_persona_is_refused_with_a_clear_page(sandbox, oracle, cerner, no_side_effect):
    """Launch whose fhirUser is a Patient (a patient-portal persona trying the provider launch)."""
    patient = oracle.seeded[cerner.tenant].patients[0]
    response = forged_launch(sandbox, oracle, cerner, set_claims={"fhirUser": f"{cerner.base_url}/Patient/{patient}"})
    assert_refused_page(response, 403, "not as a provider (Practitioner)")
    assert patient not in response.text

"""A visit reference opens only with the session of the provider who launched it."""

from __future__ import annotations

import pytest

from sandbox import config
from shared.errors import Forbidden, NotSignedIn
from shared.launch import LaunchExpired
from shared.tokens import sealer
from shared.visits import open_visit

PLACE = {"tenant": "t1", "endpoint": "0123456789abcdef"}


@pytest.fixture(autouse=True)
def keys(app_settings):
    app_settings(SEAL_KEYS=config.SEAL_KEYS, SEAL_ACTIVE_KEY_ID="k1", HASH_KEY=config.HASH_KEY,
                 PUBLIC_BASE_URL="http://127.0.0.1:7071")


def session_of(ehr_user: str, **place: str) -> str:
    return sealer().seal_json({**PLACE, **place, "ehr_user": ehr_user, "token": "x", "oid": "o"}, 60, "ehr-session")


def visit_of(**fields: str) -> str:
    return sealer().seal_json({**PLACE, "appointment": "4822401", **fields}, 60, "visit")


def test_the_launching_provider_opens_the_visit():
    visit, session = open_visit(visit_of(ehr_user="Practitioner/1"), session_of("Practitioner/1"))
    assert visit["appointment"] == "4822401" and session["ehr_user"] == "Practitioner/1"


def test_another_provider_of_the_same_site_is_forbidden():
    with pytest.raises(Forbidden) as refused:
        open_visit(visit_of(ehr_user="Practitioner/1"), session_of("Practitioner/2"))
    assert refused.value.status == 403


def test_a_session_of_another_site_must_sign_in_again():
    with pytest.raises(NotSignedIn):
        open_visit(visit_of(ehr_user="Practitioner/1"), session_of("Practitioner/1", endpoint="fedcba9876543210"))


def test_a_reference_sealed_before_visits_named_their_provider_asks_to_launch_again():
    with pytest.raises(LaunchExpired):
        open_visit(visit_of(), session_of("Practitioner/1"))

"""schemathesis over openapi.yaml against the sandbox host: anonymous, reader and admin sessions, never a 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from sandbox.entra import ADMIN_UPN, REPORTS_READER_UPN
from tests.fuzz.conftest import budget
from tests.integration.portal_client import sign_in

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(SPEC)
OPERATIONS = {operation.label: operation for operation in (result.ok() for result in SCHEMA.get_all_operations())}
SESSIONS = ("anonymous", "reader", "admin")
# Who signs in, in the fuzzer's own sandbox (tests/fuzz/conftest.py), so what generated writes change stays there.
UPNS = {"reader": REPORTS_READER_UPN, "admin": ADMIN_UPN}
# Signing out ends the session the rest of the run needs; the anonymous run still covers it.
SESSION_ENDING = "POST /api/portal/auth/signout"


@pytest.fixture(scope="module")
def sessions(sandbox) -> dict[str, tuple[dict, dict]]:
    """(headers, cookies) per session kind; signed-in ones carry the session cookie and the CSRF header."""
    made = {"anonymous": ({"Accept": "application/json"}, {})}
    for kind, upn in UPNS.items():
        portal = sign_in(sandbox, upn)
        made[kind] = ({"Accept": "application/json", "X-CSRF-Token": portal.csrf}, dict(portal.http.cookies))
    return made


def cases(label: str) -> st.SearchStrategy:
    """Valid and invalid requests for one operation (schemathesis' positive and negative generation)."""
    operation = OPERATIONS[label]
    return st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                     operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))


# Signing out is fuzzed anonymously only: in a session it would end the session the other cases use.
FUZZED = [(session, label) for session in SESSIONS for label in sorted(OPERATIONS)
          if session == "anonymous" or label != SESSION_ENDING]


@pytest.mark.fuzz_target("portal_api")
@pytest.mark.parametrize(("session", "label"), FUZZED)
def test_portal_api_never_answers_5xx(sandbox, sessions, tally, session, label):
    """Generated portal API requests (valid and malformed) get a 2xx-4xx answer in every session, never a 5xx."""
    headers, cookies = sessions[session]

    @settings(max_examples=budget("portal_api", len(FUZZED)), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases(label))
    def run(case):
        response = case.call(base_url=sandbox.world.host_url, headers=headers, cookies=cookies,
                             allow_redirects=False, timeout=30)
        assert "Traceback" not in response.text
        tally.record(response.status_code)

    run()

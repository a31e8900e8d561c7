"""hypothesis over what strangers can send: launch, callback, patient join and visit parameters; never a 5xx."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.seed import sandbox_settings
from shared.launch import LAUNCH_COOKIE, LINK_COOKIE, SESSION_COOKIE
from shared.storage.config import endpoint_id_for
from shared.tokens import Sealer
from tests.fuzz.conftest import budget
from tests.integration.launching import PROVIDER, launch_url, todays_appointments

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
TOKENISH = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~%", max_size=120)
PARAMS = st.dictionaries(st.sampled_from(["iss", "launch", "environment", "code", "state", "error",
                                          "error_description", "session_state", "aud", "x"]),
                         st.one_of(TEXT, TOKENISH), max_size=6)


def fuzz_settings(target: str, parts: int = 1):
    return settings(max_examples=budget(target, parts), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())} if cookies else {}


def check(tally, response: httpx.Response) -> None:
    assert "Traceback" not in response.text
    tally.record(response.status_code)


@pytest.fixture(scope="module")
def http(sandbox):
    with httpx.Client(base_url=sandbox.world.host_url, follow_redirects=False, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def real_launch(sandbox):
    """A real launch's cookie and state, so callbacks get past the cookie and meet the deeper checks."""
    oracle = sandbox.standins["oracle"]
    started = httpx.get(launch_url(sandbox, oracle.create_launch(todays_appointments(oracle)[0])),
                        follow_redirects=False, timeout=30)
    assert started.status_code == 302, started.text
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    return started.cookies[LAUNCH_COOKIE.name], state


@pytest.fixture(scope="module")
def provider_session(sandbox):
    """A provider's session cookie and visit reference from a real launch (the Microsoft sign-in completes)."""
    oracle, entra = sandbox.standins["oracle"], sandbox.standins["entra"]
    entra.auto_sign_in_upn = PROVIDER
    try:
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            page = browser.get(launch_url(sandbox, oracle.create_launch(todays_appointments(oracle)[1])))
            assert page.status_code == 200, page.text
            visit = re.search(r"/api/visits/([^/?\"]+)", str(page.url)).group(1)
            return browser.cookies[SESSION_COOKIE.name], visit
    finally:
        entra.auto_sign_in_upn = None


@pytest.mark.fuzz_target("launch")
def test_provider_launch_parameters_never_give_a_5xx(sandbox, http, tally):
    """Forged launch parameters (unknown, lookalike or hostile iss, any launch and environment) are refused."""
    iss = st.one_of(TEXT, st.sampled_from([sandbox.world.fhir_base(), sandbox.world.fhir_base() + "/",
                                           sandbox.world.fhir_base().upper(), "https://evil.example/r4/x",
                                           sandbox.world.oracle_url, "http://127.0.0.1:1/r4"]))

    @fuzz_settings("launch")
    @given(iss=iss, params=PARAMS)
    def run(iss, params):
        check(tally, http.get("/api/launch/provider", params={**params, "iss": iss}))

    run()


@pytest.mark.fuzz_target("callbacks")
def test_ehr_callback_parameters_never_give_a_5xx(http, real_launch, tally):
    """Forged or replayed SMART callbacks (any code, state, error; with and without the launch cookie) are refused."""
    cookie, state = real_launch

    @fuzz_settings("callbacks", 2)
    @given(params=PARAMS, right_state=st.booleans(), with_cookie=st.booleans(), tampered=st.booleans())
    def run(params, right_state, with_cookie, tampered):
        if right_state:
            params = {**params, "state": state}
        value = (cookie[:-4] + "AAAA") if tampered else cookie
        cookies = {LAUNCH_COOKIE.name: value} if with_cookie else {}
        check(tally, http.get("/api/launch/callback", params=params, headers=cookie_header(cookies)))

    run()


@pytest.mark.fuzz_target("callbacks")
def test_microsoft_callback_parameters_never_give_a_5xx(http, tally):
    """Forged Microsoft sign-in callbacks (any code and state, a forged link cookie) are refused."""

    @fuzz_settings("callbacks", 2)
    @given(params=PARAMS, link_cookie=st.one_of(st.none(), TOKENISH))
    def run(params, link_cookie):
        cookies = {LINK_COOKIE.name: link_cookie} if link_cookie else {}
        check(tally, http.get("/api/launch/microsoft/callback", params=params, headers=cookie_header(cookies)))

    run()


@pytest.mark.fuzz_target("join")
def test_patient_join_links_never_give_a_5xx(sandbox, http, tally):
    """Guessed, tampered, or validly sealed links naming unknown endpoints and appointments get a friendly page."""
    sealer = Sealer(sandbox_settings(sandbox))
    endpoint = st.one_of(st.just(endpoint_id_for(sandbox.world.fhir_base())), st.binary(min_size=8, max_size=8).map(
        bytes.hex))
    appointment = st.integers(0, 2**64 - 1).map(str)
    sealed = st.builds(lambda e, a, hours: sealer.seal_link(e, a, datetime.now(UTC) + timedelta(hours=hours)),
                       endpoint, appointment, st.integers(-48, 48))
    # What a header can carry: visible Latin-1 (browsers send ASCII; a proxy may pass anything printable).
    language = st.one_of(st.sampled_from(["", "es-MX,es;q=0.9", "pt-BR;q=abc", "*;q=0.1"]),
                         st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                                        exclude_characters="\x7f"), max_size=80))

    @fuzz_settings("join")
    @given(token=st.one_of(sealed, TOKENISH, TEXT), accept_language=language)
    def run(token, accept_language):
        headers = {"accept-language": accept_language.strip().encode("latin-1")} if accept_language.strip() else {}
        check(tally, http.get(f"/api/join/{quote(token, safe='/')}", headers=headers))

    run()


@pytest.mark.fuzz_target("visits")
def test_visit_references_never_give_a_5xx(http, provider_session, tally):
    """Guessed or tampered visit references, with or without a provider session, are refused on every action."""
    session, visit = provider_session
    reference = st.one_of(TOKENISH, TEXT, st.integers(0, len(visit) - 1).map(lambda i: visit[:i] + "A" + visit[i + 1:]))

    @fuzz_settings("visits")
    @given(ref=reference, action=st.sampled_from(["page", "send-link", "status"]), signed_in=st.booleans())
    def run(ref, action, signed_in):
        headers = {"accept": "application/json", **cookie_header({SESSION_COOKIE.name: session} if signed_in else {})}
        path = f"/api/visits/{quote(ref, safe='')}"
        if action == "page":
            response = http.get(path, headers=headers)
        elif action == "send-link":
            response = http.post(f"{path}/send-link", headers=headers)
        else:
            response = http.get(f"{path}/status", headers=headers)
        check(tally, response)

    run()

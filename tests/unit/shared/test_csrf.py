"""Cross-site state changes are refused: Origin and Sec-Fetch-Site checks, CSRF tokens bound to what they were for."""

from __future__ import annotations

import pytest

from sandbox import config
from shared.csrf import csrf_token, require_csrf_token, require_same_origin
from shared.errors import Forbidden

BINDING = {"ehr_user": "Practitioner/1", "appointment": "4822401"}


@pytest.fixture(autouse=True)
def keys(app_settings):
    app_settings(SEAL_KEYS=config.SEAL_KEYS, SEAL_ACTIVE_KEY_ID="k1", HASH_KEY=config.HASH_KEY,
                 PUBLIC_BASE_URL="http://127.0.0.1:7071/")


@pytest.mark.parametrize(("origin", "site"), [
    (None, None), ("http://127.0.0.1:7071", None), ("HTTP://127.0.0.1:7071/", "same-origin"), (None, "none"),
])
def test_same_origin_and_non_browser_requests_pass(origin, site):
    require_same_origin(origin, site)


@pytest.mark.parametrize(("origin", "site"), [
    ("https://evil.example", None), ("http://127.0.0.1:7072", None), ("null", None), (None, "cross-site"),
    (None, "same-site"), ("http://127.0.0.1:7071", "cross-site"),
])
def test_other_origins_and_sites_are_refused(origin, site):
    with pytest.raises(Forbidden) as refused:
        require_same_origin(origin, site)
    assert refused.value.code == "cross_site_request"


def test_a_token_opens_only_for_its_binding_and_purpose():
    token = csrf_token(BINDING, 60, "send-link")
    require_csrf_token(token, dict(BINDING), "send-link")
    for binding, purpose in (({**BINDING, "appointment": "1"}, "send-link"), (BINDING, "other"),
                             ({**BINDING, "extra": "x"}, "send-link")):
        with pytest.raises(Forbidden):
            require_csrf_token(token, binding, purpose)
    for bad in (None, "", "k1.AAAA", token[:-2]):
        with pytest.raises(Forbidden):
            require_csrf_token(bad, BINDING, "send-link")

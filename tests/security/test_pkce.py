"""PKCE cannot be stripped: the launch sends an S256 challenge unless the server lists only other methods."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.integration.launching import launch_url


def test_discovery_without_pkce_methods_does_not_strip_pkce(sandbox, oracle, cerner):
    """PKCE downgrade: a SMART configuration that omits code_challenge_methods_supported."""
    oracle.pkce_advertised = False
    try:
        url = launch_url(sandbox, oracle.create_launch(cerner.appointment(oracle), tenant=cerner.tenant),
                         iss=cerner.base_url)
        start = httpx.get(url, follow_redirects=False)
    finally:
        oracle.pkce_advertised = True
    assert start.status_code == 302, start.text
    sent = parse_qs(urlsplit(start.headers["location"]).query)
    assert sent["code_challenge_method"] == ["S256"] and len(sent["code_challenge"][0]) == 43
    assert len(sent["nonce"][0]) >= 43 and sent["nonce"] != sent["state"]

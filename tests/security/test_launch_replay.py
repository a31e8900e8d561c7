"""Replays of a provider launch: a used authorization code presented again with everything that came with it."""

from __future__ import annotations

import httpx

from tests.integration.launching import launch_url, todays_appointments


def ehr_user_rows(accounts, region: str) -> list[dict]:
    return [dict(r) for r in accounts.table("ehrusers", region).list_entities()]


def token_requests(oracle) -> int:
    return sum(count for label, count in oracle.request_counts.items()
               if label.startswith("POST") and label.endswith("/token"))


def test_code_replay_reaches_cerner_and_is_refused_there(sandbox, oracle, accounts, signed_in_provider):
    """A used authorization code replayed with its own launch cookie (state passes) is refused by Cerner."""
    with httpx.Client(follow_redirects=False) as client:
        start = client.get(launch_url(sandbox, oracle.create_launch(todays_appointments(oracle)[0])))
        launch_cookie = dict(client.cookies)
        callback = httpx.get(start.headers["location"]).headers["location"]
        assert client.get(callback).status_code == 302, "the first use of the code signs in"
    before, users_before = token_requests(oracle), ehr_user_rows(accounts, "americas")
    # The same callback with the same launch cookie: the state check passes, only Cerner can refuse the code.
    with httpx.Client(follow_redirects=False, cookies=launch_cookie) as replayer:
        replay = replayer.get(callback, headers={"accept": "text/html"})
    assert token_requests(oracle) == before + 1, "the replayed code reached Cerner's token endpoint"
    assert replay.status_code == 400 and "Cerner did not accept this launch" in replay.text, replay.text[:500]
    assert "Reference:" in replay.text and "Traceback" not in replay.text
    assert "ehr_session" not in " ".join(replay.headers.get_list("set-cookie")), "no provider session"
    assert ehr_user_rows(accounts, "americas") == users_before

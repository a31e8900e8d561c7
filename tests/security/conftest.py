"""Attacks through the real flows; the app's own code run in-process against the sandbox when a flow has no URL."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.integration.reminders_world import AppSettings

OTHER_HOST = "127.0.0.1"  # the Oracle stand-in under a name outside the sandbox's TRUSTED_EHR_HOSTS (localhost)


@pytest.fixture()
def app_env(sandbox):
    """The app's settings and singletons pointed at the sandbox, for the app's own code run in this process."""
    applied = AppSettings(dict(sandbox.settings_env))
    yield applied
    applied.undo()


def assert_refused_page(response: httpx.Response, status: int, message: str) -> None:
    """The specific refusal: its status and its message on a friendly page, no stack trace, no visit."""
    assert response.status_code == status, response.text[:2000]
    assert message in response.text, response.text[:2000]
    assert "Reference:" in response.text and "Traceback" not in response.text
    hops = [*response.history, response]
    assert not any("/api/visits/" in str(hop.url) for hop in hops), "no visit page was reached"
    assert not any(re.search(r"ehr_session=[^;]", header)
                   for hop in hops for header in hop.headers.get_list("set-cookie")), "no Cerner session was opened"

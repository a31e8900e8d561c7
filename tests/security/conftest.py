"""Attacks through the real flows, or on the real handlers in process (Azurite and the sandbox as the world)."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import azure.functions as func
import httpx
import pytest
from pydantic import SecretStr

import shared.storage.accounts
from shared.storage.accounts import TableAccounts
from tests.integration.reminders_world import AppSettings

OTHER_HOST = "127.0.0.1"  # the Oracle stand-in under a name outside the sandbox's TRUSTED_EHR_HOSTS (localhost)
PUBLIC_URL = "https://connector.contoso-health.example"


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


@functools.cache
def http_functions() -> tuple[tuple[str, str, str, Any], ...]:
    """(name, method, route, handler) of every HTTP function the app registers."""
    import function_app
    from sandbox.functions_host import registered_functions  # get_functions() works once per app

    found = []
    for function in registered_functions(function_app.app):
        trigger = function.get_trigger()
        if trigger.get_binding_name() == "httpTrigger":
            for method in trigger.methods:
                found.append((function.get_function_name(), str(method.value), trigger.route,
                              function.get_user_function()))
    return tuple(found)


def http_request(method: str, route: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
                 params: dict[str, str] | None = None, route_params: dict[str, str] | None = None) -> func.HttpRequest:
    """A request as the Functions host hands it to a handler."""
    return func.HttpRequest(method, f"http://127.0.0.1:7071/api/{route}", headers=headers or {}, body=body,
                            params=params or {}, route_params=route_params or {})


def every_table_row(accounts: TableAccounts) -> list[dict[str, Any]]:
    """Everything stored in every account (to prove an attack stored nothing)."""
    rows = []
    for region in (None, "americas", "emea", "apac"):
        service = accounts.service(region)
        for table in service.list_tables():
            for entity in service.get_table_client(table.name).list_entities():
                rows.append({"account": region, "table": table.name, **{k: str(v) for k, v in entity.items()}})
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


@pytest.fixture()
def app_with(app_settings, azurite_settings):
    """The app's settings pointing at the test Azurite; call it with the settings an attack changes."""

    def apply(**values: str) -> TableAccounts:
        base = {name.upper(): value.get_secret_value() if isinstance(value, SecretStr) else str(value)
                for name, value in azurite_settings.model_dump().items()}
        app_settings(**{**base, **values})
        shared.storage.accounts._default = None
        return TableAccounts(azurite_settings)

    yield apply
    shared.storage.accounts._default = None

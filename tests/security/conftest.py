"""Attacks on the app, run in process against the real handlers, with Azurite as the storage."""

from __future__ import annotations

import functools
import json
from typing import Any

import azure.functions as func
import pytest
from pydantic import SecretStr

import shared.storage.accounts
from shared.storage.accounts import TableAccounts

PUBLIC_URL = "https://connector.contoso-health.example"


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
def app_env(app_settings, azurite_settings):
    """The app's settings pointing at the test Azurite; call it with the settings an attack changes."""

    def apply(**values: str) -> TableAccounts:
        base = {name.upper(): value.get_secret_value() if isinstance(value, SecretStr) else str(value)
                for name, value in azurite_settings.model_dump().items()}
        app_settings(**{**base, **values})
        shared.storage.accounts._default = None
        return TableAccounts(azurite_settings)

    yield apply
    shared.storage.accounts._default = None

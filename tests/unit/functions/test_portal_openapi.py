"""openapi.yaml describes exactly the portal and unsubscribe routes the function app registers, and is well-formed."""

from __future__ import annotations

from pathlib import Path

import yaml

import function_app
from sandbox.functions_host import registered_functions

SPEC = yaml.safe_load((Path(__file__).resolve().parents[3] / "openapi.yaml").read_text())


def registered_portal_operations() -> set[tuple[str, str]]:
    operations = set()
    for function in registered_functions(function_app.app):  # get_functions() works once per app
        if function.get_user_function().__module__ not in ("functions.portal", "functions.notifications"):
            continue
        trigger = next((b for b in function.get_bindings() if b.type == "httpTrigger"), None)
        if trigger is None:
            continue
        operations |= {(f"/api/{trigger.route}", str(method).rsplit(".", 1)[-1].lower()) for method in trigger.methods}
    return operations


def test_every_registered_portal_route_is_described_and_nothing_else():
    described = {(path, method) for path, item in SPEC["paths"].items() for method in item
                 if method in ("get", "put", "post", "delete", "patch")}
    assert described == registered_portal_operations()


def test_every_reference_resolves():
    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from ([value] if key == "$ref" else refs(value))
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(SPEC):
        target = SPEC
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
    assert SPEC["openapi"].startswith("3.1")

"""A stand-in `az` for the deploy scripts' tests: answers the calls they make from a JSON state file and records them.

Only the commands and --query shapes the scripts use are understood; anything else fails loudly (exit 2), so a
script change that calls something new shows up as a test failure rather than a silent pass.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

State = dict[str, Any]
Options = dict[str, list[str]]
RECORDED_ENV = (
    "AZURE_LOCATION", "DEPLOYER_PRINCIPAL_ID", "DEPLOYER_PRINCIPAL_TYPE", "ENTRA_CLIENT_ID", "SMS_EVENTS_SUBSCRIPTION",
)

# What publishing to Flex answers while the app identity's Storage Blob Data Owner role propagates.
PROPAGATING_STORAGE_ROLE = (
    "Status Code: 403, Details: AuthorizationPermissionMismatch: This request is not authorized to perform this "
    "operation using this permission."
)


class AzError(Exception):
    """A failed az command: message to stderr, exit code 1 (like az)."""


def split_args(argv: list[str]) -> tuple[tuple[str, ...], Options]:
    """Command words, then `--option value...` groups."""
    words: list[str] = []
    options: Options = {}
    current: list[str] | None = None
    for arg in argv:
        if arg.startswith("--"):
            current = options.setdefault(arg[2:], [])
        elif current is None:
            words.append(arg)
        else:
            current.append(arg)
    return tuple(words), options


def one(options: Options, name: str) -> str:
    """The single value of an option ('' when absent)."""
    return (options.get(name) or [""])[0]


def app_by_id(state: State, app_id: str) -> dict[str, Any]:
    """The registration with this appId."""
    for app in state["apps"].values():
        if app["appId"] == app_id:
            return app
    raise AzError(f"Resource '{app_id}' does not exist")


def version(state: State, options: Options) -> str:
    if one(options, "query") != '"azure-cli"':
        raise AzError("fake az version answers only --query '\"azure-cli\"'")
    return state.get("az_version", "2.91.0")


def account_show(state: State, options: Options) -> str:
    """`user` after az login; `servicePrincipal` for a service principal and after az login --identity."""
    return state.get("account_type", "user") if one(options, "query") == "user.type" else ""


def access_token(state: State, options: Options) -> str:
    """An ARM access token (unsigned here) whose oid claim is the signed-in principal's object ID."""
    if one(options, "query") != "accessToken":
        raise AzError("fake az get-access-token answers only --query accessToken")
    if state.get("token_fails"):
        raise AzError("Failed to connect to MSI. Please make sure MSI is configured correctly.")
    claims = {"aud": "https://management.azure.com/", "oid": state["deployer_id"], "tid": "t"}

    def encode(part: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")

    return f"{encode({'alg': 'RS256', 'typ': 'JWT'})}.{encode(claims)}.c2lnbmF0dXJl"


def role_definition_list(state: State, options: Options) -> str:
    return state["role_ids"].get(one(options, "name"), "")


def app_list(state: State, options: Options) -> str:
    app = state["apps"].get(one(options, "display-name"))
    return app["appId"] if app else ""


def deployment(state: State, options: Options) -> str:
    return "Resource changes: no change." if state["calls"][-1]["argv"][2] == "what-if" else ""


def deployment_create(state: State, options: Options) -> str:
    state["deployed"] = True
    return ""


def deployment_show(state: State, options: Options) -> str:
    if one(options, "query") != "properties.outputs" or not state.get("deployed"):
        raise AzError("DeploymentNotFound")
    return json.dumps({name: {"type": "String", "value": value} for name, value in state["outputs"].items()})


def secret_list(state: State, options: Options) -> str:
    """Refused while the deployer's new Key Vault role propagates (vault_denials more times)."""
    if state.get("vault_denials", 0) > 0:
        state["vault_denials"] -= 1
        raise AzError(
            "(Forbidden) Caller is not authorized to perform action on resource. Action: "
            "'Microsoft.KeyVault/vaults/secrets/readMetadata/action' Code: Forbidden"
        )
    return "\n".join(state["secrets"])


def secret_set(state: State, options: Options) -> str:
    state["secrets"][one(options, "name")] = Path(one(options, "file")).read_text(encoding="utf-8")
    return ""


def config_zip(state: State, options: Options) -> str:
    """Fails publish_failures more times with publish_error (by default the 403 of a storage role still propagating)."""
    import zipfile  # only this command needs it; the fake runs dozens of times per test

    state.setdefault("publish_attempts", 0)
    state["publish_attempts"] += 1
    if state.get("publish_failures", 0) > 0:
        state["publish_failures"] -= 1
        raise AzError(state.get("publish_error", PROPAGATING_STORAGE_ROLE))
    with zipfile.ZipFile(one(options, "src")) as archive:
        state["published_zip"] = archive.namelist()
    return ""


def function_show(state: State, options: Options) -> str:
    """The app lists a function once published code defines it (the zip holds function_app.py)."""
    if "function_app.py" not in state.get("published_zip", []):
        raise AzError(f"Function '{one(options, 'function-name')}' does not exist")
    return f"{one(options, 'name')}/{one(options, 'function-name')}"


def nothing(state: State, options: Options) -> str:
    return ""


def cloud_show(state: State, options: Options) -> str:
    return "https://graph.microsoft.com/"


def app_create(state: State, options: Options) -> str:
    app_id = str(uuid.uuid4())
    state["apps"][one(options, "display-name")] = {
        "appId": app_id, "redirectUris": [], "claims": None, "declared": [], "passwords": 0,
    }
    return app_id


def app_update(state: State, options: Options) -> str:
    app = app_by_id(state, one(options, "id"))
    if "web-redirect-uris" in options:
        app["redirectUris"] = options["web-redirect-uris"]
    if "set" in options:
        app["claims"] = one(options, "set")
    return ""


def app_show(state: State, options: Options) -> str:
    return "\n".join(app_by_id(state, one(options, "id"))["declared"])


def permission_add(state: State, options: Options) -> str:
    app_by_id(state, one(options, "id"))["declared"].append(one(options, "api-permissions").split("=")[0])
    return ""


def sp_show(state: State, options: Options) -> str:
    sp_id, query = one(options, "id"), one(options, "query")
    if sp_id == state["graph_app_id"]:
        role = re.fullmatch(r"appRoles\[\?value=='([\w.]+)'\]\.id \| \[0\]", query)
        return state["graph_roles"].get(role.group(1), "") if role else state["graph_sp"]
    if sp_id not in state["service_principals"]:
        raise AzError(f"Service principal '{sp_id}' doesn't exist")
    return state["service_principals"][sp_id]


def sp_create(state: State, options: Options) -> str:
    state["service_principals"][one(options, "id")] = str(uuid.uuid4())
    return ""


def rest(state: State, options: Options) -> str:
    if one(options, "method") == "POST":
        state["role_assignments"].append(json.loads(one(options, "body")))
        return ""
    principal = one(options, "uri").split("/servicePrincipals/")[1].split("/")[0]
    return "\n".join(a["appRoleId"] for a in state["role_assignments"] if a["principalId"] == principal)


def credential_reset(state: State, options: Options) -> str:
    app_by_id(state, one(options, "id"))["passwords"] += 1
    return f"client-secret-{uuid.uuid4()}"


COMMANDS: dict[tuple[str, ...], Callable[[State, Options], str]] = {
    ("version",): version,
    ("account", "show"): account_show,
    ("account", "get-access-token"): access_token,
    ("role", "definition", "list"): role_definition_list,
    ("ad", "app", "list"): app_list,
    ("ad", "app", "create"): app_create,
    ("ad", "app", "update"): app_update,
    ("ad", "app", "show"): app_show,
    ("ad", "app", "permission", "add"): permission_add,
    ("ad", "app", "credential", "reset"): credential_reset,
    ("ad", "sp", "show"): sp_show,
    ("ad", "sp", "create"): sp_create,
    ("cloud", "show"): cloud_show,
    ("rest",): rest,
    ("deployment", "sub", "validate"): deployment,
    ("deployment", "sub", "what-if"): deployment,
    ("deployment", "sub", "create"): deployment_create,
    ("deployment", "sub", "show"): deployment_show,
    ("keyvault", "secret", "list"): secret_list,
    ("keyvault", "secret", "set"): secret_set,
    ("functionapp", "deployment", "source", "config-zip"): config_zip,
    ("functionapp", "restart"): nothing,
    ("functionapp", "function", "show"): function_show,
}


def main(argv: list[str]) -> int:
    """Run one az command against the state file named by FAKE_AZ_STATE."""
    state_path = Path(os.environ["FAKE_AZ_STATE"])
    state = json.loads(state_path.read_text())
    state["calls"].append({"argv": argv, "env": {k: os.environ.get(k) for k in RECORDED_ENV}})
    words, options = split_args(argv)
    handler = COMMANDS.get(words)
    try:
        if handler is None:
            raise AzError(f"fake az does not know: az {' '.join(argv)}")
        output = handler(state, options)
    except AzError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2 if handler is None else 1
    finally:
        state_path.write_text(json.dumps(state))
    if output and one(options, "output") != "none":
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

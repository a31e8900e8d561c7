"""Table clients for the app's own account and each region's account, built from endpoint + credential."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceExistsError

from shared.errors import ConnectorError
from shared.http import sdk_transport
from shared.runtime import forgotten_on_reset
from shared.settings import Region, Settings, get_settings, is_loopback_url
from shared.storage.schema import REGION_TABLES

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient


class RegionNotProvisioned(ConnectorError):
    status, code, title = 503, "region_not_provisioned", "This data region is not available"


def is_loopback(endpoint: str) -> bool:
    """True for a local Azurite endpoint, the only place an account key is ever used."""
    return is_loopback_url(endpoint)


def storage_credential(endpoint: str, settings: Settings):
    """Azurite's account key for a loopback endpoint; the managed identity everywhere else."""
    if is_loopback(endpoint):
        account = urlsplit(endpoint).path.strip("/").split("/")[0]
        return AzureNamedKeyCredential(account, settings.azurite_account_key.get_secret_value())
    from azure.identity import DefaultAzureCredential  # imported lazily: only Azure needs it

    return DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id or None)


def _service(endpoint: str, settings: Settings) -> TableServiceClient:
    # The Tables SDK loads with the first table client, not on cold start.
    from azure.data.tables import TableServiceClient

    return TableServiceClient(endpoint=endpoint, credential=storage_credential(endpoint, settings),
                              transport=sdk_transport())


class TableAccounts:
    """Table clients per (account, table), with tables created once per process."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self._services: dict[str, TableServiceClient] = {}
        self._ready: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def endpoint(self, region: Region | None) -> str:
        """The app's own account (region None) or a region's account."""
        if region is None:
            return self.settings.table_endpoint
        endpoint = self.settings.region_endpoint(region)
        if not endpoint:
            raise RegionNotProvisioned(
                f"The {region} data region is not provisioned for this deployment.",
                next_step="Ask IT to enable this region in the deployment, or choose another region.",
            )
        return endpoint

    def service(self, region: Region | None) -> TableServiceClient:
        endpoint = self.endpoint(region)
        with self._lock:
            if endpoint not in self._services:
                self._services[endpoint] = _service(endpoint, self.settings)
            return self._services[endpoint]

    def table(self, name: str, region: Region | None = None) -> TableClient:
        """A table client; personal-data tables must name their region."""
        if (name in REGION_TABLES) != (region is not None):
            raise ValueError(f"table {name!r} {'needs' if name in REGION_TABLES else 'takes no'} region")
        service = self.service(region)
        key = (self.endpoint(region), name)
        if key not in self._ready:
            with contextlib.suppress(ResourceExistsError):
                service.create_table(name)
            self._ready.add(key)
        return service.get_table_client(name)


_default: TableAccounts | None = None


@forgotten_on_reset
def _forget_accounts() -> None:
    global _default
    _default = None


def default_accounts() -> TableAccounts:
    """The process-wide accounts object, built from the settings on first use."""
    global _default
    if _default is None:
        _default = TableAccounts()
    return _default

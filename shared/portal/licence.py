"""The connector's licence: one of the configured SKUs enabled in the tenant's subscribedSkus (cached an hour)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.errors import ConnectorError
from shared.microsoft.graph import GraphClient
from shared.portal.auth import Credentials, authenticate
from shared.runtime import forgotten_on_reset
from shared.settings import get_settings
from shared.storage.config import FhirEndpoint

CACHE_SECONDS = 3600


class NoLicence(ConnectorError):
    status, code, title = 403, "no_licence", "No active licence"


@dataclass(frozen=True)
class LicenceState:
    """Whether the tenant holds an enabled licensing SKU, which ones, and when that was read."""

    licensed: bool
    skus: tuple[str, ...]
    checked_at: datetime


_lock = threading.Lock()
_cache: dict[str, tuple[float, LicenceState]] = {}


@forgotten_on_reset
def _forget_licences() -> None:
    with _lock:
        _cache.clear()


def accepted_skus() -> tuple[str, ...]:
    return tuple(p.strip() for p in get_settings().license_sku_part_numbers.split(",") if p.strip())


def licence_state(tenant_id: str) -> LicenceState:
    """Read the tenant's subscribedSkus through Graph (once an hour per tenant and process)."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get(tenant_id)
    if cached and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    accepted = {part.lower() for part in accepted_skus()}
    found = tuple(sorted(
        sku["skuPartNumber"] for sku in GraphClient(tenant_id).subscribed_skus()
        if str(sku.get("skuPartNumber", "")).lower() in accepted and sku.get("capabilityStatus") == "Enabled"
    ))
    state = LicenceState(bool(found), found, datetime.now(UTC))
    with _lock:
        _cache[tenant_id] = (now, state)
    return state


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def required_for(environment: str) -> bool:
    return environment == "production" or get_settings().license_enforce_in_test


def require_for_launch(tenant_id: str, endpoint: FhirEndpoint) -> None:
    """Refuse a launch from an environment that needs a licence the organization does not hold."""
    if required_for(endpoint.environment) and not licence_state(tenant_id).licensed:
        raise NoLicence(
            "No active licence for the Teams EHR connector was found for your organization, so virtual "
            f"appointments cannot start from this {endpoint.environment} environment.",
            next_step="Ask your Microsoft 365 administrator to activate one of these licences: "
            f"{', '.join(accepted_skus())}. The connector's portal shows the licence state.",
        )


def portal_licence(credentials: Credentials) -> dict[str, Any]:
    """The licence state as the portal shows it."""
    caller = authenticate(credentials)
    state = licence_state(caller.tenant_id)
    required = ["production", "test"] if get_settings().license_enforce_in_test else ["production"]
    if state.licensed:
        message = f"Licensed: {', '.join(state.skus)} is active."
    else:
        message = (f"No active licence found. Launches from {' and '.join(required)} environments will be refused "
                   f"until one of {', '.join(accepted_skus())} is active in your tenant.")
    return {"licensed": state.licensed, "skus": list(state.skus), "accepted_skus": list(accepted_skus()),
            "required_for": required, "checked_at": state.checked_at.isoformat(), "message": message}

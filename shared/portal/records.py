"""Step 3 of the portal: the integration records the Cerner side needs, per FHIR base URL, copy-ready."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shared.launch import launch_url_for
from shared.portal.auth import Credentials, authenticate
from shared.settings import get_settings
from shared.smart.ehr_launch import V1_SCOPES
from shared.storage.accounts import default_accounts
from shared.storage.config import ConfigRepository, FhirEndpoint


def cerner_tenant(base_url: str) -> str:
    """The Millennium tenant id in an R4 base URL (…/r4/<tenant>), or '' when the URL has another shape."""
    parts = urlsplit(base_url).path.strip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2].lower() == "r4" else ""


def cerner_steps(record: dict[str, str], endpoint: FhirEndpoint) -> list[str]:
    """What to enter where on the Cerner side, in the order a Cerner consultant does it."""
    tenant = cerner_tenant(endpoint.base_url) or "your Millennium tenant"
    return [
        "In Cerner Code Console (code.cerner.com), open the connector's provider application (SMART v1, "
        f"provider persona) for the {endpoint.environment} domain, tenant {tenant}.",
        f"Set its SMART Launch URI to the provider launch URL: {record['provider_launch_url']}",
        f"Set its Redirect URI to: {record['redirect_uri']}",
        f"Check that the client ID is {record['client_id'] or '(not set: ask IT for SMART_CLIENT_ID)'} and that "
        f"the application has these scopes: {record['scopes']}",
        "Ask your Oracle Health consultant to add the application to the PowerChart patient board as the "
        f"\"Teams\" link of virtual appointments in the {endpoint.environment} domain.",
        "Patients need nothing in Cerner: they join from the SMS link, which starts with the patient launch URL "
        f"({record['patient_launch_url']}). If you use Cerner's video-visit patient link instead, use that "
        "URL as its base.",
    ]


def record_for(endpoint: FhirEndpoint) -> dict[str, Any]:
    settings = get_settings()
    record = {
        "endpoint_id": endpoint.id, "display_name": endpoint.display_name, "environment": endpoint.environment,
        "fhir_base_url": endpoint.base_url,
        "provider_launch_url": launch_url_for(endpoint),
        "patient_launch_url": f"{settings.public_base_url}/api/join/",
        "redirect_uri": f"{settings.public_base_url}/api/launch/callback",
        "client_id": settings.smart_client_id,
        "scopes": V1_SCOPES,
    }
    return {**record, "cerner_steps": cerner_steps(record, endpoint)}


def records(credentials: Credentials) -> dict[str, Any]:
    """The integration records of every FHIR base URL of the caller's organization."""
    caller = authenticate(credentials)
    endpoints = ConfigRepository(default_accounts()).endpoints(caller.tenant_id)
    return {"records": [record_for(e) for e in endpoints]}

"""Microsoft Graph over the shared client: app-only token, 429 with Retry-After honoured, typed errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from shared.errors import ConnectorError, DependencyFailed, NotFound
from shared.http import client, dependency
from shared.microsoft.entra import graph_app_token
from shared.settings import get_settings

MAX_ATTEMPTS = 3
MAX_RETRY_AFTER_SECONDS = 10.0


class AccessPolicyMissing(ConnectorError):
    status, code, title = 403, "teams_access_policy_missing", "Teams is not set up for this clinic yet"


class VirtualAppointmentLinkRefused(ConnectorError):
    """Graph will not give this app the virtual-appointment join link (app-only tokens may be unsupported)."""

    status, code, title = 502, "virtual_appointment_link_refused", "Microsoft Teams refused the visit link"


# Statuses with which Graph refuses getVirtualAppointmentJoinWebUrl to an app-only caller, per issue 16.
_LINK_REFUSALS = frozenset({401, 403, 404})


def _not_supported(response: httpx.Response) -> bool:
    """An error whose code or message says the call is not supported (as for withdrawn app-only access)."""
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    text = f"{error.get('code', '')} {error.get('message', '')}".lower()
    return "notsupported" in text.replace(" ", "") or "not supported" in text


class GraphClient:
    """Calls Graph v1.0 for one tenant with an app-only token."""

    def __init__(self, tenant_id: str | None = None):
        self.tenant_id = tenant_id
        self.base = f"{get_settings().graph_base_url}/v1.0"

    def request(self, method: str, path: str, json: dict[str, Any] | None = None) -> httpx.Response:
        """One Graph call; throttling (429) waits for Retry-After, a few times at most."""
        headers = {"Authorization": f"Bearer {graph_app_token(self.tenant_id)}", "Accept": "application/json"}
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with dependency("graph"):
                response = client("graph").request(method, f"{self.base}{path}", json=json, headers=headers)
            if response.status_code != 429 or attempt == MAX_ATTEMPTS:
                return response
            time.sleep(min(float(response.headers.get("Retry-After", "1") or 1), MAX_RETRY_AFTER_SECONDS))
        raise AssertionError("unreachable")

    def checked(self, method: str, path: str, organizer: str = "",
                json: dict[str, Any] | None = None) -> httpx.Response:
        """A call whose failures become user-safe errors (the access policy one names what to grant)."""
        return self.raise_for_status(self.request(method, path, json), organizer)

    @staticmethod
    def raise_for_status(response: httpx.Response, organizer: str = "") -> httpx.Response:
        """The response when it succeeded, else the user-safe error for its status."""
        if response.status_code < 300:
            return response
        if response.status_code == 403 and organizer:
            raise AccessPolicyMissing(
                "Microsoft Teams does not yet allow the connector to create meetings for this clinic's "
                "virtual appointments account.",
                next_step="Contact your administrator. Administrator: grant the Teams application access policy "
                "to the organizer account configured for this FHIR endpoint (Grant-CsApplicationAccessPolicy, "
                "see infra/tenant-setup.ps1); it takes up to 30 minutes to apply.",
            )
        if response.status_code == 404:
            raise NotFound("Microsoft Teams has no such meeting or account.",
                           next_step="Ask your administrator to check the organizer account in the portal.")
        if response.status_code == 429:
            raise DependencyFailed("Microsoft Teams is busy right now.", next_step="Try again in a minute.",
                                   status=503)
        raise DependencyFailed(f"Microsoft Graph answered HTTP {response.status_code}.",
                               next_step="Try again in a minute. If it keeps happening, tell IT.")

    def create_or_get_meeting(self, organizer: str, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """(created?, meeting) for an externalId under the organizer."""
        response = self.checked("POST", f"/users/{organizer}/onlineMeetings/createOrGet", organizer, body)
        return response.status_code == 201, response.json()

    def update_meeting(self, organizer: str, meeting_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.checked("PATCH", f"/users/{organizer}/onlineMeetings/{meeting_id}", organizer, body).json()

    def virtual_appointment_join_url(self, organizer: str, meeting_id: str) -> str:
        """The browser (B2C) join URL, where anonymous patients wait in the lobby.

        Raises VirtualAppointmentLinkRefused when Graph refuses it to this app (401/403/404 or "not supported").
        """
        path = f"/users/{organizer}/onlineMeetings/{meeting_id}/getVirtualAppointmentJoinWebUrl"
        response = self.request("GET", path)
        if response.status_code in _LINK_REFUSALS or (response.status_code >= 400 and _not_supported(response)):
            raise VirtualAppointmentLinkRefused(f"Microsoft Graph answered HTTP {response.status_code}")
        return self.raise_for_status(response, organizer).json()["value"]

    def attendance_reports(self, organizer: str, meeting_id: str) -> list[dict[str, Any]]:
        """Every ended session's attendance report of a meeting, each with its attendanceRecords expanded."""
        path = f"/users/{organizer}/onlineMeetings/{meeting_id}/attendanceReports"
        summaries = self.checked("GET", path, organizer).json().get("value", [])
        return [self.checked("GET", f"{path}/{summary['id']}?$expand=attendanceRecords", organizer).json()
                for summary in summaries]

    def online_meeting(self, organizer: str, meeting_id: str) -> dict[str, Any]:
        return self.checked("GET", f"/users/{organizer}/onlineMeetings/{meeting_id}", organizer).json()

    def call_records_started_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The tenant's call records (without sessions) that started in [start, end] to the second, every page."""
        end = end.replace(microsecond=0) + timedelta(seconds=1)  # whole seconds; a call that started now counts
        window = f"startDateTime ge {start.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} and " \
                 f"startDateTime lt {end.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
        return self.every_page(f"/communications/callRecords?{urlencode({'$filter': window})}", "value")

    def call_record_with_sessions(self, record_id: str) -> dict[str, Any]:
        """A call record with every session and its segments (sessions come 60 a page)."""
        path = f"/communications/callRecords/{quote(record_id, safe='')}?$expand=sessions($expand=segments)"
        record = self.checked("GET", path).json()
        next_link = record.pop("sessions@odata.nextLink", None)
        if next_link:
            record["sessions"] = record.get("sessions", []) + self.every_page(self.graph_path(next_link), "value")
        return record

    def every_page(self, path: str, key: str) -> list[dict[str, Any]]:
        """The items of a collection, following @odata.nextLink page after page."""
        items: list[dict[str, Any]] = []
        next_path: str | None = path
        while next_path:
            page = self.checked("GET", next_path).json()
            items += page.get(key, [])
            next_link = page.get("@odata.nextLink")
            next_path = self.graph_path(next_link) if next_link else None
        return items

    def graph_path(self, next_link: str) -> str:
        """A nextLink as a path under our Graph base; the token is never sent to any other host."""
        if not isinstance(next_link, str) or not next_link.startswith(self.base + "/"):
            raise DependencyFailed("Microsoft Graph answered a next page outside Microsoft Graph.",
                                   next_step="Tell IT: the connector ignored it and will try again next hour.")
        return next_link[len(self.base):]

    def subscribed_skus(self) -> list[dict[str, Any]]:
        return self.checked("GET", "/subscribedSkus").json().get("value", [])

"""The stand-in's directory: tenants, users with their roles, and the app registration's app roles."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.config import (
    ENTRA_TENANT_ID,
    GLOBAL_ADMIN,
    GLOBAL_READER,
    OTHER_TENANT_ID,
    REPORTS_READER,
    TEAMS_ADMIN,
)

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Seen in real wids claims of ordinary member users; it is not an admin role (see domain notes D6).
MEMBER_USER_WID = "b79fbf4d-3ef9-4689-8143-76b194e85509"
APP_ROLES = (
    "CallRecords.Read.All",
    "OnlineMeetings.ReadWrite.All",
    "OnlineMeetingArtifact.Read.All",
    "Organization.Read.All",
    "VirtualAppointment.Read.All",
)
APP_DISPLAY_NAME = "Teams EHR connector (sandbox)"
MULTI_TENANT_PATHS = ("organizations", "common")
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
CODE_LIFETIME_SECONDS = 600
TENANT_DOMAINS = {"contoso-health.example": ENTRA_TENANT_ID, "fabrikam-clinic.example": OTHER_TENANT_ID}

# Fixed object ids, so seeds, tests and stored EHR-user links agree across runs.
PROVIDER_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f601"
SECOND_PROVIDER_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f602"
ORGANIZER_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f603"
ADMIN_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f604"
TEAMS_ADMIN_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f605"
GLOBAL_READER_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f606"
REPORTS_READER_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f607"
NO_ROLE_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f608"
OTHER_ADMIN_OID = "9d2e3f40-5a61-4b72-8c83-d4e5f6a7b801"

PROVIDER_UPN = "dr.grey@contoso-health.example"
SECOND_PROVIDER_UPN = "dr.burke@contoso-health.example"
ORGANIZER_UPN = "virtual.appointments@contoso-health.example"
ADMIN_UPN = "admin@contoso-health.example"
TEAMS_ADMIN_UPN = "teams.admin@contoso-health.example"
GLOBAL_READER_UPN = "global.reader@contoso-health.example"
REPORTS_READER_UPN = "reports.reader@contoso-health.example"
NO_ROLE_UPN = "front.desk@contoso-health.example"
OTHER_ADMIN_UPN = "admin@fabrikam-clinic.example"


@dataclass(frozen=True)
class EntraUser:
    """A directory user: immutable object id and tenant, display fields, directory role template ids."""

    oid: str
    tid: str
    upn: str
    name: str
    wids: tuple[str, ...] = (MEMBER_USER_WID,)


def default_users() -> list[EntraUser]:
    """The sandbox directory: providers, the organizer account and one user per admin role, two tenants."""
    home = ENTRA_TENANT_ID
    return [
        EntraUser(PROVIDER_OID, home, PROVIDER_UPN, "Dr. Meredith Grey"),
        EntraUser(SECOND_PROVIDER_OID, home, SECOND_PROVIDER_UPN, "Dr. Preston Burke"),
        EntraUser(ORGANIZER_OID, home, ORGANIZER_UPN, "Virtual Appointments"),
        EntraUser(ADMIN_OID, home, ADMIN_UPN, "Adele Vance", (GLOBAL_ADMIN, MEMBER_USER_WID)),
        EntraUser(TEAMS_ADMIN_OID, home, TEAMS_ADMIN_UPN, "Lee Gu", (TEAMS_ADMIN, MEMBER_USER_WID)),
        EntraUser(GLOBAL_READER_OID, home, GLOBAL_READER_UPN, "Megan Bowen", (GLOBAL_READER, MEMBER_USER_WID)),
        EntraUser(REPORTS_READER_OID, home, REPORTS_READER_UPN, "Alex Wilber", (REPORTS_READER, MEMBER_USER_WID)),
        EntraUser(NO_ROLE_OID, home, NO_ROLE_UPN, "Pat Front Desk"),
        EntraUser(OTHER_ADMIN_OID, OTHER_TENANT_ID, OTHER_ADMIN_UPN, "Nestor Wilke", (GLOBAL_ADMIN, MEMBER_USER_WID)),
    ]

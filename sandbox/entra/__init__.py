"""Entra ID stand-in: OIDC discovery, JWKS, authorize (account picker), token and logout, enough for msal."""

from sandbox.entra.app import Endpoint, aad_error_response, build_app, no_favicon
from sandbox.entra.directory import (
    ADMIN_OID,
    ADMIN_UPN,
    APP_DISPLAY_NAME,
    APP_ROLES,
    CODE_LIFETIME_SECONDS,
    GLOBAL_READER_OID,
    GLOBAL_READER_UPN,
    GRAPH_APP_ID,
    GRAPH_AUDIENCE,
    MEMBER_USER_WID,
    MULTI_TENANT_PATHS,
    NO_ROLE_OID,
    NO_ROLE_UPN,
    OIDC_SCOPES,
    ORGANIZER_OID,
    ORGANIZER_UPN,
    OTHER_ADMIN_OID,
    OTHER_ADMIN_UPN,
    PROVIDER_OID,
    PROVIDER_UPN,
    REPORTS_READER_OID,
    REPORTS_READER_UPN,
    SECOND_PROVIDER_OID,
    SECOND_PROVIDER_UPN,
    TEAMS_ADMIN_OID,
    TEAMS_ADMIN_UPN,
    TENANT_DOMAINS,
    EntraUser,
    default_users,
)
from sandbox.entra.protocol import AadError, FaultPlan, InvalidAccessToken, SignIn
from sandbox.entra.state import EntraState

__all__ = [
    "ADMIN_OID", "ADMIN_UPN", "APP_DISPLAY_NAME", "APP_ROLES", "CODE_LIFETIME_SECONDS", "GLOBAL_READER_OID",
    "GLOBAL_READER_UPN", "GRAPH_APP_ID", "GRAPH_AUDIENCE", "MEMBER_USER_WID", "MULTI_TENANT_PATHS", "NO_ROLE_OID",
    "NO_ROLE_UPN", "OIDC_SCOPES", "ORGANIZER_OID", "ORGANIZER_UPN", "OTHER_ADMIN_OID", "OTHER_ADMIN_UPN",
    "PROVIDER_OID", "PROVIDER_UPN", "REPORTS_READER_OID", "REPORTS_READER_UPN", "SECOND_PROVIDER_OID",
    "SECOND_PROVIDER_UPN", "TEAMS_ADMIN_OID", "TEAMS_ADMIN_UPN", "TENANT_DOMAINS", "AadError", "Endpoint",
    "EntraState", "EntraUser", "FaultPlan", "InvalidAccessToken", "SignIn", "aad_error_response", "build_app",
    "default_users", "no_favicon",
]

"""The app's one typed settings object, read once from app settings (environment variables)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Region = Literal["americas", "emea", "apac"]
REGIONS: tuple[Region, ...] = ("americas", "emea", "apac")

# Azurite's published development key; only ever used for loopback endpoints.
AZURITE_WELL_KNOWN_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

# Keys published in this repository (local.settings.sample.json, sandbox/config.py, README): anyone can read them,
# so they are accepted only while the app is served on a loopback address (a developer's machine or the tests).
PUBLISHED_KEYS = frozenset({
    "q6T1bQy3nX9vW2eR5tY8uI0oP4aS7dF1gH3jK6lZ9xc=",  # SEAL_KEYS k1 of the sample settings and the sandbox
    "Zm9yLXRoZS1zYW5kYm94LW9ubHktaGFzaC1rZXktMzI=",  # HASH_KEY of the sample settings and the sandbox
})
_PUBLISHED_KEY_BYTES = frozenset(base64.b64decode(key) for key in PUBLISHED_KEYS)
MIN_KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9]{0,16}")
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


def parse_key_list(value: str) -> list[tuple[str, str]]:
    """(key id, base64) pairs of a comma list; an entry without "id:" has the empty id (base64 has no colon)."""
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        key_id, separator, b64 = item.partition(":")
        pairs.append((key_id, b64) if separator else ("", item))
    return pairs


def decode_key(b64: str) -> bytes:
    """Strict base64 (standard alphabet, padded) to bytes; binascii.Error when it is not."""
    return base64.b64decode(b64, validate=True)


def is_loopback_url(url: str) -> bool:
    """Whether the URL's host is this machine (localhost, 127.0.0.0/8, ::1)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every setting the connector reads; names are the app-setting names in upper case."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    public_base_url: str = Field("http://127.0.0.1:7071", description="Public URL of the function app.")
    default_region: Region = Field("americas", description="Data region offered when an organization first saves.")

    table_endpoint: str = Field(
        "http://127.0.0.1:10002/devstoreaccount1", description="Table endpoint of the app's own account."
    )
    table_endpoint_americas: str = Field("", description="Table endpoint of the americas personal-data account.")
    table_endpoint_emea: str = Field("", description="Table endpoint of the emea personal-data account.")
    table_endpoint_apac: str = Field("", description="Table endpoint of the apac personal-data account.")
    azurite_account_key: SecretStr = Field(
        SecretStr(AZURITE_WELL_KNOWN_KEY), description="Account key used only for loopback (Azurite) endpoints."
    )
    azure_client_id: str = Field("", description="Client ID of the user-assigned managed identity (Azure only).")

    entra_authority_host: str = Field("https://login.microsoftonline.com", description="Entra ID authority host.")
    entra_tenant_id: str = Field("", description="Tenant that owns the app registration and the organizer accounts.")
    entra_client_id: str = Field("", description="Application (client) ID of the connector's app registration.")
    entra_client_secret: SecretStr = Field(SecretStr(""), description="Client secret of that app registration.")
    graph_base_url: str = Field("https://graph.microsoft.com", description="Microsoft Graph root.")
    allowed_tenants: str = Field(
        "", description="Comma list of Entra tenant IDs whose users may use the portal and link providers "
        "(empty: ENTRA_TENANT_ID only)."
    )
    portal_role_check_seconds: int = Field(
        300, ge=1, le=900, description="How often a portal session re-reads the administrator's roles from Entra."
    )

    smart_client_id: str = Field("", description="Client ID of the provider app registered in Cerner Code Console.")
    smart_client_secret: SecretStr = Field(SecretStr(""), description="Its secret when registered as confidential.")
    smart_system_client_id: str = Field("", description="Client ID of the Cerner system account (reminders).")
    smart_system_private_key: SecretStr = Field(
        SecretStr(""), description="PEM private key for SMART Backend Services client assertions."
    )
    smart_system_key_id: str = Field("", description="Key ID (kid) of that private key in the registered JWKS.")
    smart_system_secret: SecretStr = Field(SecretStr(""), description="Cerner system account basic secret (fallback).")

    seal_keys: SecretStr = Field(
        SecretStr(""), description="Comma list of keyid:base64 32-byte AES keys for links and cookies."
    )
    seal_active_key_id: str = Field("", description="Key ID used to seal new links and cookies.")
    hash_key: SecretStr = Field(
        SecretStr(""), description="Base64 key for keyed hashes in tables and meeting ids; to rotate, a comma list "
        "of keyid:base64 whose first key hashes new rows (older keys still find their rows).",
    )

    acs_endpoint: str = Field("", description="Azure Communication Services endpoint.")
    acs_access_key: SecretStr = Field(SecretStr(""), description="ACS access key; empty in Azure (managed identity).")
    acs_resource_id: str = Field(
        "", description="Resource ID of the ACS resource: only its Event Grid events (their topic) are accepted."
    )

    sms_schedule: str = Field("0 */5 * * * *", description="NCRONTAB schedule of the reminder job.")
    sms_rate_per_minute: int = Field(200, ge=1, description="Sends per minute per sending number.")
    email_sender_address: str = Field(
        "", description="Sender of notification emails (DoNotReply@ a domain linked to ACS); empty turns email off."
    )
    email_rate_per_minute: int = Field(30, ge=1, description="Emails per minute from the sender address.")
    sms_lookahead_hours: int = Field(26, ge=1, description="How far ahead the reminder job searches appointments.")
    sms_fanout: Literal["auto", "always", "never"] = Field(
        "auto", description="Whether the reminder timer hands each endpoint to a queue-triggered function (`auto`: "
        "when a run has more than SMS_FANOUT_DEPARTMENTS departments to search).",
    )
    sms_fanout_departments: int = Field(
        200, ge=1, description="Departments to search in one run above which `auto` fans out."
    )
    sms_queue_endpoint: str = Field(
        "http://127.0.0.1:10001/devstoreaccount1", description="Queue endpoint of the app's own account (fan-out)."
    )
    sms_queue_name: str = Field(
        "sms-slices", pattern=r"^[a-z0-9][a-z0-9-]{1,55}[a-z0-9]$",
        description="Storage queue of the reminder job's fan-out (one message per endpoint); failures go to "
        "`<name>-poison`.",
    )
    license_sku_part_numbers: str = Field(
        "Microsoft_Cloud_for_Healthcare,TEAMS_EHR_CONNECTOR",
        description="Comma list of SKU part numbers that license production use.",
    )
    license_enforce_in_test: bool = Field(False, description="Also require the licence for test environments.")

    http_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of every outbound HTTP call.")
    config_cache_seconds: int = Field(
        30, ge=0, description="How long an instance reuses the FHIR endpoint and organization rows that launches, "
        "visit pages and patient links read (0: read each time); a portal save clears them on its own instance.",
    )
    allow_private_fhir_hosts: bool = Field(
        False, description="Accept loopback/private FHIR hosts (local sandbox only)."
    )
    trusted_ehr_hosts: str = Field(
        ".cerner.com", description="Comma list of hosts (a leading dot: any host under that domain) the connector "
        "talks to for an EHR: FHIR, authorization, token, JWKS and paging links.",
    )
    join_window_minutes: int = Field(30, ge=0, description="How early before the start a patient link opens.")
    link_grace_hours: int = Field(2, ge=0, description="How long after the appointment end a patient link works.")
    lobby_alert_minutes: int = Field(5, ge=1, description="Wait after which the provider page alerts.")
    provider_frame_ancestors: str = Field(
        "", description="Space-separated https origins allowed to embed the provider pages in a frame (none if empty)."
    )

    @field_validator("provider_frame_ancestors")
    @classmethod
    def _https_origins(cls, value: str) -> str:
        for origin in value.split():
            parts = urlsplit(origin)
            if parts.scheme != "https" or not parts.hostname or origin.rstrip("/") != f"https://{parts.netloc}":
                raise ValueError(f"{origin!r} is not an https origin (https://host[:port])")
        return " ".join(origin.rstrip("/") for origin in value.split())
    telemetry_console: bool = Field(
        False, description="Print metrics and spans to the console when Application Insights is not set (local)."
    )

    @field_validator("public_base_url", "graph_base_url", "entra_authority_host")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def url(self, path: str) -> str:
        """Absolute URL of one of the app's own routes ("/api/...")."""
        return f"{self.public_base_url}{path}"

    def region_endpoint(self, region: Region) -> str:
        """Table endpoint of a region's personal-data account, or '' when that region is not provisioned."""
        return getattr(self, f"table_endpoint_{region}")

    @property
    def enabled_regions(self) -> tuple[Region, ...]:
        return tuple(r for r in REGIONS if self.region_endpoint(r))

    @property
    def allowed_tenant_ids(self) -> frozenset[str]:
        """The Entra tenants allowed to sign in, whatever audience the app registration has."""
        listed = {t.strip().lower() for t in self.allowed_tenants.split(",") if t.strip()}
        return frozenset(listed or ({self.entra_tenant_id.lower()} if self.entra_tenant_id else set()))

    def tenant_allowed(self, tenant_id: object) -> bool:
        return isinstance(tenant_id, str) and tenant_id.lower() in self.allowed_tenant_ids

    def seal_key_ring(self) -> dict[str, bytes]:
        """Key id → AES key, from SEAL_KEYS."""
        return {key_id: base64.b64decode(b64) for key_id, b64 in parse_key_list(self.seal_keys.get_secret_value())}

    @property
    def trusted_ehr_host_list(self) -> tuple[str, ...]:
        """TRUSTED_EHR_HOSTS as lower-case entries ('.cerner.com' covers every host under cerner.com)."""
        return tuple(h.strip().lower() for h in self.trusted_ehr_hosts.split(",") if h.strip())

    def hash_key_ring(self) -> list[tuple[str, bytes]]:
        """(key id, key) from HASH_KEY, the active key first; a bare base64 key has the empty id."""
        return [(key_id, base64.b64decode(b64)) for key_id, b64 in parse_key_list(self.hash_key.get_secret_value())]

    def key_problems(self) -> list[str]:
        """Why the keys are not safe to serve with, each naming its setting; empty when they are."""
        public = not is_loopback_url(self.public_base_url)
        problems = _key_list_problems("SEAL_KEYS", self.seal_keys.get_secret_value(), public, exact=True,
                                      need_ids=True)
        problems += _key_list_problems("HASH_KEY", self.hash_key.get_secret_value(), public, exact=False,
                                       need_ids=False)
        if not problems and self.seal_active_key_id not in self.seal_key_ring():
            problems.append("SEAL_ACTIVE_KEY_ID does not name a key in SEAL_KEYS.")
        return problems


def _key_list_problems(setting: str, value: str, public: bool, *, exact: bool, need_ids: bool) -> list[str]:
    """What is wrong with one key-list setting (never the key itself: messages reach logs and pages)."""
    if value.strip().startswith(KEY_VAULT_REFERENCE):
        return [f"{setting} is an unresolved Key Vault reference: give the app's identity access to the secret."]
    pairs = parse_key_list(value)
    if not pairs:
        return [f"{setting} is missing."]
    problems = []
    ids = [key_id for key_id, _ in pairs]
    if (need_ids and "" in ids) or len(set(ids)) != len(ids) or not all(map(_KEY_ID.fullmatch, ids)):
        problems.append(f"{setting} must be a comma list of keyid:base64 entries with distinct key ids of up to "
                        "16 letters and digits.")
    for key_id, b64 in pairs:
        name = f"{setting} key {key_id!r}" if key_id else setting
        try:
            key = decode_key(b64)
        except (binascii.Error, ValueError):
            problems.append(f"{name} is not valid base64.")
            continue
        if len(key) < MIN_KEY_BYTES or (exact and len(key) != MIN_KEY_BYTES):
            size = f"exactly {MIN_KEY_BYTES}" if exact else f"at least {MIN_KEY_BYTES}"
            problems.append(f"{name} is {len(key)} bytes; it must be {size} random bytes.")
        elif public and key in _PUBLISHED_KEY_BYTES:
            problems.append(f"{name} is a published sample key; generate your own for a public PUBLIC_BASE_URL.")
    return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, read once per process."""
    return Settings()

"""Per-tenant configuration: organization region, FHIR endpoints, SMS consents and phone numbers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from azure.core.exceptions import ResourceExistsError
from pydantic import BaseModel, Field

from shared.cache import TtlCache
from shared.errors import Conflict
from shared.settings import Region, get_settings
from shared.smart.fhir_url import NotAUrl, canonical_base_url
from shared.storage import entities
from shared.storage.accounts import TableAccounts

TABLE = "config"
INDEX_PARTITION = "fhir_index"
Environment = Literal["test", "production"]
# How an endpoint's confirmations and reminders go out: texts, emails, both, or email only to patients
# without a textable mobile.
Channel = Literal["sms", "email", "both", "email_if_no_mobile"]
# An index row whose endpoint row never followed (the writer died in between) may be claimed after this.
STALE_CLAIM = timedelta(minutes=2)
TAKEN = "This FHIR base URL is already registered by another organization."

# Rows launches, visit pages and patient links read on every request, kept for CONFIG_CACHE_SECONDS; only rows
# that exist (a URL or endpoint not registered is read again each time, so one added in the portal works at once).
_recent_rows: TtlCache[Any] = TtlCache(
    0, lifetime=lambda entity: get_settings().config_cache_seconds if entity is not None else 0)


def normalize_base_url(url: str) -> str:
    """The canonical form of a FHIR base URL (see shared/smart/fhir_url.py)."""
    return canonical_base_url(url)


def endpoint_id_for(base_url: str) -> str:
    """A stable, short id for a FHIR base URL (a URL is configuration, not personal data)."""
    return hashlib.sha256(normalize_base_url(base_url).encode()).hexdigest()[:16]


class FhirEndpoint(BaseModel):
    """One Cerner FHIR base URL registered by an organization."""

    base_url: str
    environment: Environment
    display_name: str = ""
    departments: list[str] = Field(default_factory=list)
    organizer: str = ""
    sms_number: str = ""
    channel: Channel = "sms"
    confirmations_on: bool = True
    reminder_offsets: list[int] = Field(default_factory=lambda: [24 * 60, 15])
    quiet_hours: str = ""
    default_language: str = "en"
    time_zone: str = "America/Chicago"

    @property
    def id(self) -> str:
        return endpoint_id_for(self.base_url)


class Organization(BaseModel):
    tenant_id: str
    region: Region


class SmsConsents(BaseModel):
    consent_send: bool = False
    consent_send_at: datetime | None = None
    consent_send_by: str = ""
    consent_attendees: bool = False
    consent_attendees_at: datetime | None = None
    consent_attendees_by: str = ""

    @property
    def complete(self) -> bool:
        return self.consent_send and self.consent_attendees


class JoinLinkChoice(BaseModel):
    """Which link an endpoint's patients get when Graph refused the virtual-appointment one, and since when."""

    mode: Literal["meeting"] = "meeting"
    reason: str
    reference: str
    decided_at: datetime


class ConfigRepository:
    """Configuration in the app's own account, partitioned by Entra tenant id (tenant isolation)."""

    def __init__(self, accounts: TableAccounts, reuse_recent_reads: bool = False):
        """`reuse_recent_reads`: the endpoint, index and organization rows may be up to CONFIG_CACHE_SECONDS old
        (request paths; every check on them still runs on each request). The portal always reads afresh."""
        self.table = accounts.table(TABLE)
        self.reuse_recent_reads = reuse_recent_reads

    def _read(self, partition: str, row: str) -> Any:
        """A point read, or the same row read less than CONFIG_CACHE_SECONDS ago by this instance."""
        if not self.reuse_recent_reads or get_settings().config_cache_seconds <= 0:
            return entities.get(self.table, partition, row)
        return _recent_rows.get((self.table.url, partition, row), lambda: entities.get(self.table, partition, row))

    @staticmethod
    def _changed() -> None:
        """A configuration write: this instance's recent reads are stale (other instances' expire on their own)."""
        _recent_rows.clear()

    def organization(self, tenant_id: str) -> Organization | None:
        entity = self._read(tenant_id, "organization")
        return Organization(tenant_id=tenant_id, region=entity["region"]) if entity else None

    def region(self, tenant_id: str) -> Region:
        """Where the organization's personal data lives (the deployment default until it is chosen)."""
        organization = self.organization(tenant_id)
        return organization.region if organization else get_settings().default_region

    def choose_region(self, tenant_id: str, region: Region, chosen_by: str) -> Organization:
        """Pin the organization's data region, created only if absent: of two admins at once, one pins it."""
        self._changed()
        try:
            entities.create(self.table, TABLE, "organization", tenant_id, "organization", {
                "region": region, "region_chosen_at": datetime.now(UTC), "region_chosen_by": chosen_by,
            })
        except ResourceExistsError:
            current = self.organization(tenant_id)
            if current is None or current.region != region:
                raise Conflict(f"The data region is already {current.region if current else 'chosen'} and "
                               "cannot be changed.") from None
            return current
        return Organization(tenant_id=tenant_id, region=region)

    def endpoints(self, tenant_id: str) -> list[FhirEndpoint]:
        rows = self.table.query_entities(
            "PartitionKey eq @pk and Kind eq 'fhir_endpoint'", parameters={"pk": tenant_id}
        )
        return sorted((self._endpoint(dict(row)) for row in rows), key=lambda e: (e.environment, e.display_name))

    def endpoint(self, tenant_id: str, endpoint_id: str) -> FhirEndpoint | None:
        entity = self._read(tenant_id, f"fhir:{endpoint_id}")
        return self._endpoint(entity) if entity else None

    def add_endpoint(self, tenant_id: str, endpoint: FhirEndpoint, updated_by: str) -> FhirEndpoint:
        """Register a new FHIR base URL: its index row is created only if absent, so one admin of one tenant wins."""
        if not self._claim(tenant_id, endpoint, new=True):
            raise Conflict("This FHIR base URL is already registered.",
                           next_step="Edit the existing entry instead of adding it again.")
        self._write_endpoint(tenant_id, endpoint, updated_by)
        return endpoint

    def save_endpoint(self, tenant_id: str, endpoint: FhirEndpoint, updated_by: str) -> FhirEndpoint:
        """Add or replace a FHIR endpoint of this tenant; a URL another tenant holds is never taken over."""
        self._claim(tenant_id, endpoint, new=False)
        self._write_endpoint(tenant_id, endpoint, updated_by)
        return endpoint

    def _write_endpoint(self, tenant_id: str, endpoint: FhirEndpoint, updated_by: str) -> None:
        fields = endpoint.model_dump()
        fields["base_url"] = normalize_base_url(endpoint.base_url)
        fields.update(updated_at=datetime.now(UTC), updated_by=updated_by)
        entities.upsert(self.table, TABLE, "fhir_endpoint", tenant_id, f"fhir:{endpoint.id}", fields)
        self._changed()

    def _claim(self, tenant_id: str, endpoint: FhirEndpoint, new: bool) -> bool:
        """Own the URL's index row (create-if-absent, else etag); False when this tenant already holds it."""
        fields = {"tenant_id": tenant_id, "endpoint_id": endpoint.id, "environment": endpoint.environment}
        self._changed()
        try:
            entities.create(self.table, TABLE, "fhir_index", INDEX_PARTITION, endpoint.id, fields)
            return True
        except ResourceExistsError:
            pass
        index = entities.get(self.table, INDEX_PARTITION, endpoint.id)
        if index is None:  # removed meanwhile: claim it afresh
            return self._claim(tenant_id, endpoint, new)
        registered = self.endpoint(index["tenant_id"], endpoint.id) is not None
        if index["tenant_id"] != tenant_id and (registered or not self._stale(index)):
            raise Conflict(TAKEN, next_step="Each Cerner environment belongs to one organization; check the URL.")
        if index["tenant_id"] == tenant_id and new and (registered or not self._stale(index)):
            return False
        if not entities.replace_if_unchanged(self.table, TABLE, "fhir_index", INDEX_PARTITION, endpoint.id, fields,
                                             index.metadata["etag"]):
            raise Conflict("This FHIR base URL was changed by someone else at the same time.",
                           next_step="Reload the portal and try again.")
        return True

    @staticmethod
    def _stale(index: Any) -> bool:
        written = index.metadata.get("timestamp")
        return written is not None and datetime.now(UTC) - written > STALE_CLAIM

    def delete_endpoint(self, tenant_id: str, endpoint_id: str) -> None:
        """Remove the endpoint row first, then its index row if it still names this tenant."""
        if self.endpoint(tenant_id, endpoint_id) is None:
            return
        entities.delete(self.table, tenant_id, f"fhir:{endpoint_id}")
        self._changed()
        index = entities.get(self.table, INDEX_PARTITION, endpoint_id)
        if index is not None and index["tenant_id"] == tenant_id:
            entities.delete_if_unchanged(self.table, INDEX_PARTITION, endpoint_id, index.metadata["etag"])
        entities.delete(self.table, tenant_id, f"joinlink:{endpoint_id}")
        self._changed()

    def join_link_choice(self, tenant_id: str, endpoint_id: str) -> JoinLinkChoice | None:
        entity = entities.get(self.table, tenant_id, f"joinlink:{endpoint_id}")
        if not entity:
            return None
        return JoinLinkChoice(**{k: v for k, v in entity.items() if k in JoinLinkChoice.model_fields})

    def save_join_link_choice(self, tenant_id: str, endpoint_id: str, choice: JoinLinkChoice) -> None:
        entities.upsert(self.table, TABLE, "join_link", tenant_id, f"joinlink:{endpoint_id}", choice.model_dump())

    def forget_join_link_choice(self, tenant_id: str, endpoint_id: str) -> None:
        entities.delete(self.table, tenant_id, f"joinlink:{endpoint_id}")

    def find_by_iss(self, iss: str) -> tuple[str, FhirEndpoint] | None:
        """The tenant and endpoint registered for a launch's `iss` in any spelling, across all organizations."""
        try:
            return self.find_by_id(endpoint_id_for(iss))
        except NotAUrl:
            return None

    def find_by_id(self, endpoint_id: str) -> tuple[str, FhirEndpoint] | None:
        """The tenant and endpoint of an endpoint id (from a patient link)."""
        index = self._read(INDEX_PARTITION, endpoint_id)
        if index is None:
            return None
        endpoint = self.endpoint(index["tenant_id"], endpoint_id)
        return (index["tenant_id"], endpoint) if endpoint else None

    def all_endpoints(self) -> list[tuple[str, FhirEndpoint]]:
        """Every organization's endpoints (for the reminder job)."""
        rows = self.table.query_entities("Kind eq 'fhir_endpoint'")
        return [(row["PartitionKey"], self._endpoint(dict(row))) for row in rows]

    def sms_consents(self, tenant_id: str) -> SmsConsents:
        entity = entities.get(self.table, tenant_id, "sms")
        if not entity:
            return SmsConsents()
        return SmsConsents(**{k: v for k, v in entity.items() if k in SmsConsents.model_fields})

    def save_sms_consents(self, tenant_id: str, consents: SmsConsents) -> None:
        entities.upsert(self.table, TABLE, "sms", tenant_id, "sms", consents.model_dump())

    @staticmethod
    def _endpoint(entity: dict) -> FhirEndpoint:
        return FhirEndpoint(
            base_url=entity["base_url"],
            environment=entity["environment"],
            display_name=entity.get("display_name", ""),
            departments=entities.json_field(entity, "departments", []),
            organizer=entity.get("organizer", ""),
            sms_number=entity.get("sms_number", ""),
            channel=entity.get("channel", "sms"),
            confirmations_on=entity.get("confirmations_on", True),
            reminder_offsets=entities.json_field(entity, "reminder_offsets", [24 * 60, 15]),
            quiet_hours=entity.get("quiet_hours", ""),
            default_language=entity.get("default_language", "en"),
            time_zone=entity.get("time_zone", "America/Chicago"),
        )

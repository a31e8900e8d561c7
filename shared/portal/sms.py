"""Step 2 of the portal: SMS consents, generated phone numbers (asynchronous), and per-endpoint SMS settings."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from pydantic import BaseModel, Field, field_validator

from shared.errors import Conflict, InvalidInput, NotFound
from shared.portal import numbers
from shared.portal.auth import Caller, Credentials, authenticate
from shared.portal.endpoints import owned, public_endpoint
from shared.portal.inputs import Strict, parse_body
from shared.settings import get_settings
from shared.sms.texts import LANGUAGES
from shared.storage.accounts import TableAccounts, default_accounts
from shared.storage.config import TABLE, Channel, ConfigRepository
from shared.storage.schema import check_entity

NumberStatus = Literal["searching", "purchasing", "provisioned", "failed"]
# ACS toll-free numbers text only these destinations (domain notes E8); numbers are bought in US or CA.
TOLL_FREE_REACH = ("US", "CA", "PR")
SEARCH_COUNTRY = {"US": "US", "PR": "US", "CA": "CA"}
COUNTRY_NAMES = {"US": "the United States", "CA": "Canada", "PR": "Puerto Rico", "GB": "the United Kingdom",
                 "BR": "Brazil", "MX": "Mexico", "DE": "Germany", "FR": "France", "ES": "Spain", "IN": "India",
                 "AU": "Australia"}
PROGRESS = {
    "searching": (1, "Searching for an available toll-free number…"),
    "purchasing": (2, "Purchasing the number…"),
    "provisioned": (3, "Provisioned."),
    "failed": (3, "Failed."),
}
VERIFICATION_STEPS = {
    "unverified": "Carriers filter texts from unverified toll-free numbers (Canada blocks them). Submit the "
    "toll-free verification for this number in the Azure portal (your Communication Services resource → "
    "Phone numbers → this number → toll-free verification), then mark it as pending here.",
    "pending": "Verification is under review; it usually takes 5 to 8 weeks. Texts may be filtered meanwhile. "
    "Mark it as verified when Azure reports it approved.",
    "verified": "Verified: carriers deliver texts from this number.",
}
CLAIM_TIMEOUT = timedelta(minutes=2)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_QUIET_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


class ConsentsInput(Strict):
    consent_send: bool
    consent_attendees: bool


class GenerateInput(Strict):
    country: str = Field("US", pattern=r"^[A-Z]{2}$")


class VerificationInput(Strict):
    verification: Literal["unverified", "pending", "verified"]


class EndpointSmsInput(Strict):
    """Per FHIR base URL: the linked number and how confirmations and reminders go out."""

    sms_number: str = Field("", max_length=16)
    channel: Channel | None = None  # omitted: unchanged (clients from before email keep working)
    confirmations_on: bool = True
    reminder_offsets: list[Annotated[int, Field(ge=1, le=10080)]] = Field(default_factory=lambda: [1440, 15],
                                                                        max_length=5)
    quiet_hours: str = Field("", max_length=11)
    default_language: Literal[LANGUAGES] = "en"  # type: ignore[valid-type]
    time_zone: str = Field("America/Chicago", max_length=64)

    @field_validator("sms_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        if value and not _E164.match(value):
            raise ValueError("must be a phone number in E.164 form, such as +18005550100, or empty to unlink")
        return value

    @field_validator("reminder_offsets")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        return sorted(set(value), reverse=True)

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        if value and not _QUIET_HOURS.match(value):
            raise ValueError("must look like 21:00-08:00 (local time, from-to), or be empty for none")
        if value and value[:5] == value[6:]:
            raise ValueError("must start and end at different times")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as America/Chicago") from exc
        return value


class NumberRecord(BaseModel):
    """A phone number the organization generated, from the first search to provisioned (or failed)."""

    id: str
    country: str
    status: NumberStatus
    number: str = ""
    verification: str = ""
    operation: str = ""
    error: str = ""
    updated_at: datetime

    def public(self, linked: list[str]) -> dict[str, Any]:
        step, label = PROGRESS[self.status]
        body: dict[str, Any] = {
            "id": self.id, "number": self.number, "country": self.country, "status": self.status,
            "progress": {"step": step, "of": 3, "label": label}, "updated_at": self.updated_at.isoformat(),
            "linked_endpoints": linked, "error": self.error,
        }
        if self.status == "provisioned":
            body.update(verification=self.verification or "unverified", reaches=list(TOLL_FREE_REACH),
                        what_to_do=VERIFICATION_STEPS[self.verification or "unverified"],
                        reach_note="Toll-free numbers text patients in the United States, Canada and Puerto Rico "
                        "only; ACS cannot deliver to phones elsewhere (for example Brazil).")
            body["progress"]["label"] = (f"Provisioned, linked to {len(linked)} FHIR base URL"
                                         f"{'s' if len(linked) > 1 else ''}." if linked
                                         else "Provisioned, not linked to a FHIR base URL yet.")
        if self.status == "failed":
            body["what_to_do"] = "Generate a new phone number to try again."
        return body


class NumberRepository:
    """`phone_number` entities of the config table, with optimistic concurrency for the LRO hand-offs."""

    def __init__(self, accounts: TableAccounts):
        self.table = accounts.table(TABLE)

    def all(self, tenant_id: str) -> list[NumberRecord]:
        rows = self.table.query_entities("PartitionKey eq @pk and Kind eq 'phone_number'",
                                         parameters={"pk": tenant_id})
        return sorted((self._record(dict(r)) for r in rows), key=lambda r: r.updated_at)

    def get(self, tenant_id: str, number_id: str) -> tuple[NumberRecord, str] | None:
        try:
            entity = self.table.get_entity(tenant_id, f"number:{number_id}")
        except ResourceNotFoundError:
            return None
        return self._record(dict(entity)), entity.metadata["etag"]

    def save(self, tenant_id: str, record: NumberRecord, etag: str | None = None) -> str | None:
        """Write the record and return its new etag; with an etag, only if nobody changed it meanwhile (else None)."""
        record.updated_at = datetime.now(UTC)
        entity = {"PartitionKey": tenant_id, "RowKey": f"number:{record.id}", "Kind": "phone_number",
                  **record.model_dump(exclude={"id"})}
        check_entity(TABLE, entity)
        try:
            if etag:
                written = self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                                   match_condition=MatchConditions.IfNotModified)
            else:
                written = self.table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except ResourceModifiedError:
            return None
        return written["etag"]

    @staticmethod
    def _record(entity: dict[str, Any]) -> NumberRecord:
        fields = {k: v for k, v in entity.items() if k in NumberRecord.model_fields}
        return NumberRecord(id=entity["RowKey"].removeprefix("number:"), **fields)


def _stores() -> tuple[ConfigRepository, NumberRepository]:
    accounts = default_accounts()
    return ConfigRepository(accounts), NumberRepository(accounts)


def consents(credentials: Credentials) -> dict[str, Any]:
    """The consents, each with when and by whom (an audit reference; `…_by_you` when it was the caller)."""
    caller = authenticate(credentials)
    current = _stores()[0].sms_consents(caller.tenant_id)
    return {**current.model_dump(mode="json"), "complete": current.complete,
            "consent_send_by_you": current.consent_send_by == caller.actor,
            "consent_attendees_by_you": current.consent_attendees_by == caller.actor, "email": email_sender()}


def email_sender() -> dict[str, str]:
    """The deployment's email sender. Bicep sets it only once its domain is verified and linked to ACS (an
    Azure-managed domain at once, a custom one after its DNS records verify), so set means ready."""
    sender = get_settings().email_sender_address
    if not sender:
        return {"sender": "", "domain": "", "verification": "not_set_up",
                "text": "Email is off: no sender domain is linked to Azure Communication Services."}
    domain = sender.rpartition("@")[2]
    managed = domain.endswith(".azurecomm.net")
    return {"sender": sender, "domain": domain, "verification": "verified",
            "text": f"Verified and linked ({'Azure-managed domain' if managed else 'your domain'})."}


def save_consents(credentials: Credentials, body: bytes) -> dict[str, Any]:
    """Record each consent with who changed it and when."""
    caller = authenticate(credentials, write=True)
    request = parse_body(ConsentsInput, body)
    repository = _stores()[0]
    current = repository.sms_consents(caller.tenant_id)
    now = datetime.now(UTC)
    for name in ("consent_send", "consent_attendees"):
        wanted = getattr(request, name)
        if wanted != getattr(current, name):
            setattr(current, name, wanted)
            setattr(current, f"{name}_at", now)
            setattr(current, f"{name}_by", caller.actor)
    repository.save_sms_consents(caller.tenant_id, current)
    return consents(credentials)


def _linked(config: ConfigRepository, tenant_id: str) -> dict[str, list[str]]:
    links: dict[str, list[str]] = {}
    for endpoint in config.endpoints(tenant_id):
        if endpoint.sms_number:
            links.setdefault(endpoint.sms_number, []).append(endpoint.id)
    return links


def list_numbers(credentials: Credentials) -> dict[str, Any]:
    """Generated numbers with status and verification, plus linked numbers not generated here (seeded)."""
    caller = authenticate(credentials)
    config, store = _stores()
    links = _linked(config, caller.tenant_id)
    records = store.all(caller.tenant_id)
    listed = [r.public(links.get(r.number, [])) for r in records]
    known = {r.number for r in records}
    listed += [{"id": None, "number": number, "status": "provisioned", "linked_endpoints": ids,
                "reaches": list(TOLL_FREE_REACH), "managed": False,
                "progress": {"step": 3, "of": 3, "label": "Provisioned outside the portal."}}
               for number, ids in links.items() if number not in known]
    return {"numbers": listed}


def generate(credentials: Credentials, body: bytes) -> dict[str, Any]:
    """Start a number search (returns at once); the status check moves it on to the purchase."""
    caller = authenticate(credentials, write=True)
    country = parse_body(GenerateInput, body).country
    config, store = _stores()
    if not config.sms_consents(caller.tenant_id).complete:
        raise Conflict("Give both SMS consents before generating a phone number.",
                       next_step="Tick both consent boxes in Step 2 and save them.")
    if country not in SEARCH_COUNTRY:
        name = COUNTRY_NAMES.get(country, country)
        raise InvalidInput(
            f"ACS can't text patients in {name} from a toll-free number: toll-free numbers reach the United "
            "States, Canada and Puerto Rico only.",
            next_step="Choose the United States, Canada or Puerto Rico. Other countries need another sender type "
            "(such as an alphanumeric sender ID), which this connector does not set up.")
    step = numbers.start_search(SEARCH_COUNTRY[country])
    record = NumberRecord(id=uuid.uuid4().hex[:16], country=SEARCH_COUNTRY[country], status="searching",
                          operation=step.token, updated_at=datetime.now(UTC))
    return _apply_search(store, caller.tenant_id, record, None, step).public([])


def number_status(credentials: Credentials, number_id: str) -> dict[str, Any]:
    """A number's state as stored: reading it never moves the search or the purchase on."""
    caller = authenticate(credentials)
    config, store = _stores()
    record = _load(store, caller.tenant_id, number_id)[0]
    return record.public(_linked(config, caller.tenant_id).get(record.number, []))


def advance_number(credentials: Credentials, number_id: str) -> dict[str, Any]:
    """Take the number's search or purchase one step further (the browser's polling, a POST with CSRF)."""
    caller = authenticate(credentials, write=True)
    config, store = _stores()
    record = _advance(store, caller, number_id)
    return record.public(_linked(config, caller.tenant_id).get(record.number, []))


def set_verification(credentials: Credentials, number_id: str, body: bytes) -> dict[str, Any]:
    """Record where the number's toll-free verification stands (the administrator submits it in Azure)."""
    caller = authenticate(credentials, write=True)
    verification = parse_body(VerificationInput, body).verification
    config, store = _stores()
    record, _ = _load(store, caller.tenant_id, number_id)
    if record.status != "provisioned":
        raise Conflict("Only a provisioned number has a toll-free verification.")
    record.verification = verification
    store.save(caller.tenant_id, record)
    return record.public(_linked(config, caller.tenant_id).get(record.number, []))


def _load(store: NumberRepository, tenant_id: str, number_id: str) -> tuple[NumberRecord, str]:
    found = store.get(tenant_id, number_id) if re.fullmatch(r"[0-9a-f]{16}", number_id) else None
    if found is None:
        raise NotFound("There is no such phone number operation in your organization.",
                       next_step="Reload the portal to see your phone numbers.")
    return found


def _advance(store: NumberRepository, caller: Caller, number_id: str) -> NumberRecord:
    record, etag = _load(store, caller.tenant_id, number_id)
    if record.status == "searching":
        return _apply_search(store, caller.tenant_id, record, etag, numbers.continue_search(record.operation))
    if record.status == "purchasing" and record.operation:
        return _apply_purchase(store, caller.tenant_id, record, etag, numbers.continue_purchase(record.operation))
    if record.status == "purchasing" and datetime.now(UTC) - record.updated_at > CLAIM_TIMEOUT:
        # The request that claimed the purchase died before it could record the operation.
        record.status, record.error = "failed", "The purchase was interrupted before it started."
        store.save(caller.tenant_id, record, etag)
    return record


def _apply_search(store: NumberRepository, tenant_id: str, record: NumberRecord, etag: str | None,
                  step: numbers.Step) -> NumberRecord:
    if step.status == "running":
        if etag is None:
            store.save(tenant_id, record)
        return record
    if step.status == "failed" or not step.result.phone_numbers:
        record.status, record.operation = "failed", ""
        record.error = f"No toll-free number could be reserved ({step.error_code or 'none available'})."
        store.save(tenant_id, record, etag)
        return record
    # Claim the purchase first: of two status checks racing here, only one may buy.
    record.status, record.number, record.operation = "purchasing", step.result.phone_numbers[0], ""
    claimed = store.save(tenant_id, record, etag)
    if claimed is None:
        return _load(store, tenant_id, record.id)[0]
    return _apply_purchase(store, tenant_id, record, claimed, numbers.start_purchase(step.result.search_id))


def _apply_purchase(store: NumberRepository, tenant_id: str, record: NumberRecord, etag: str | None,
                    step: numbers.Step) -> NumberRecord:
    if step.status == "running":
        if record.operation != step.token:
            record.operation = step.token
            store.save(tenant_id, record, etag)
        return record
    record.operation = ""
    if step.status == "failed":
        record.status = "failed"
        record.error = f"Azure Communication Services could not complete the purchase ({step.error_code})."
    else:
        record.status, record.verification = "provisioned", "unverified"
    store.save(tenant_id, record, etag)
    return record


def save_endpoint_sms(credentials: Credentials, endpoint_id: str, body: bytes) -> dict[str, Any]:
    """Link a provisioned number to a FHIR base URL and set its confirmations, reminders and quiet hours."""
    caller = authenticate(credentials, write=True)
    request = parse_body(EndpointSmsInput, body)
    config, store = _stores()
    endpoint = owned(config, caller.tenant_id, endpoint_id)
    switching_on_email = request.channel not in (None, "sms", endpoint.channel)
    if switching_on_email and not config.sms_consents(caller.tenant_id).complete:
        raise Conflict("Give both notification consents before switching on email.",
                           next_step="Tick both consent boxes in Step 2 and save them.")
    if request.sms_number and request.sms_number != endpoint.sms_number:
        if not config.sms_consents(caller.tenant_id).complete:
            raise Conflict("Give both SMS consents before linking a phone number.",
                           next_step="Tick both consent boxes in Step 2 and save them.")
        provisioned = {r.number for r in store.all(caller.tenant_id) if r.status == "provisioned"}
        if request.sms_number not in provisioned | set(_linked(config, caller.tenant_id)):
            raise InvalidInput("This phone number is not one of your organization's provisioned numbers.",
                               next_step="Pick a number listed under Your phone numbers, or generate one.")
    changed = endpoint.model_copy(update={k: v for k, v in request.model_dump().items()
                                          if k != "channel" or v is not None})
    return public_endpoint(config.save_endpoint(caller.tenant_id, changed, caller.actor))

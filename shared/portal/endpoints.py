"""Step 1 of the portal: the organization's data region and its FHIR base URLs (add, edit, remove, validate)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from shared.errors import Conflict, InvalidInput, NotFound
from shared.microsoft.meetings import MEETING_LINK_MEMORY
from shared.portal.auth import Credentials, authenticate
from shared.portal.inputs import Strict, parse_body
from shared.portal.validation import FhirUrlInvalid, check_url, validate
from shared.settings import REGIONS, Region, get_settings
from shared.storage.accounts import default_accounts
from shared.storage.config import (
    ConfigRepository,
    FhirEndpoint,
    JoinLinkChoice,
    endpoint_id_for,
    normalize_base_url,
)
from shared.storage.ehrusers import EhrUserRepository

LocationId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,63}$")]
_ACCOUNT = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.\-]{1,190}\.[A-Za-z]{2,}$")
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class UrlInput(Strict):
    """A FHIR base URL and the environment it is for."""

    base_url: str = Field(min_length=1, max_length=512)
    environment: Literal["test", "production"]


class EndpointInput(UrlInput):
    """A FHIR base URL as the administrator enters it in Step 1."""

    display_name: str = Field("", max_length=100)
    departments: list[LocationId] = Field(default_factory=list, max_length=200)
    organizer: str = Field(min_length=3, max_length=254)

    @field_validator("organizer")
    @classmethod
    def _account(cls, value: str) -> str:
        if not (_ACCOUNT.match(value) or _OBJECT_ID.match(value)):
            raise ValueError("must be the Teams account's user principal name (name@domain) or its object ID")
        return value

    @field_validator("departments")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class RegionInput(Strict):
    region: Literal["americas", "emea", "apac"]


class ConfirmationRequired(Conflict):
    """A removal that also deletes personal data waits for the administrator to confirm it."""

    code = "confirmation_required"

    def __init__(self, message: str, next_step: str, provider_links: int):
        super().__init__(message, next_step=next_step)
        self.provider_links = provider_links

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "provider_links": self.provider_links, "confirm": "true"}


def _repository() -> ConfigRepository:
    return ConfigRepository(default_accounts())


def public_endpoint(endpoint: FhirEndpoint) -> dict[str, Any]:
    return {"id": endpoint.id, **endpoint.model_dump()}


def region(credentials: Credentials) -> dict[str, Any]:
    """The organization's data region (null until chosen) and the regions this deployment offers."""
    caller = authenticate(credentials)
    organization = _repository().organization(caller.tenant_id)
    settings = get_settings()
    return {"region": organization.region if organization else None, "chosen": organization is not None,
            "default": settings.default_region, "available": list(settings.enabled_regions or REGIONS)}


def choose_region(credentials: Credentials, body: bytes) -> dict[str, Any]:
    """Pin the data region, once; choosing the same region again is harmless, another one a conflict."""
    caller = authenticate(credentials, write=True)
    chosen: Region = parse_body(RegionInput, body).region
    if chosen not in get_settings().enabled_regions:
        raise InvalidInput(f"The {chosen} data region is not provisioned in this deployment.",
                           next_step="Choose one of the regions offered, or ask IT to provision this one.")
    _repository().choose_region(caller.tenant_id, chosen, caller.actor)
    return region(credentials)


def patient_link_notice(choice: JoinLinkChoice | None) -> dict[str, Any] | None:
    """What the portal says when patients get the meeting link because Graph refused the virtual-appointment one."""
    if choice is None:
        return None
    when = choice.decided_at.strftime("%Y-%m-%d %H:%M UTC")
    hours = int(MEETING_LINK_MEMORY.total_seconds() // 3600)
    return {
        "mode": choice.mode, "since": choice.decided_at.isoformat(), "reference": choice.reference,
        "message": (
            f"Since {when} Microsoft Graph refuses the connector the virtual-appointment join link "
            f"({choice.reason}), so patients get the Teams meeting's own link. On a computer they still join "
            "from the browser without an account and wait in the lobby. On a phone that link may ask them to "
            "open or install the Teams app first (browser join on phones is what the virtual-appointment link "
            f"adds). The connector asks Graph again {hours} hours after it refused. Reference {choice.reference}."
        ),
    }


def list_endpoints(credentials: Credentials) -> dict[str, Any]:
    caller = authenticate(credentials)
    repository = _repository()
    return {"endpoints": [
        {**public_endpoint(e), "patient_link": patient_link_notice(repository.join_link_choice(caller.tenant_id, e.id))}
        for e in repository.endpoints(caller.tenant_id)
    ]}


def check(credentials: Credentials, body: bytes) -> dict[str, Any]:
    """Run the validation of a URL without saving it (the wizard's Validate button)."""
    caller = authenticate(credentials, write=True)
    request = parse_body(UrlInput, body)
    return validate(_repository(), caller.tenant_id, request.base_url, request.environment).public()


def add(credentials: Credentials, body: bytes) -> dict[str, Any]:
    """Validate and register a new FHIR base URL (the data region must be chosen first)."""
    caller = authenticate(credentials, write=True)
    request = parse_body(EndpointInput, body)
    repository = _repository()
    if repository.organization(caller.tenant_id) is None:
        raise Conflict("Choose your organization's data region before adding a FHIR base URL.",
                       next_step="Pick the data region in Step 1, then save again.")
    report = validate(repository, caller.tenant_id, request.base_url, request.environment)
    endpoint = FhirEndpoint(base_url=report.base_url, environment=request.environment,
                            display_name=request.display_name or report.base_url,
                            departments=request.departments, organizer=request.organizer)
    return public_endpoint(repository.add_endpoint(caller.tenant_id, endpoint, caller.actor))


def update(credentials: Credentials, endpoint_id: str, body: bytes) -> dict[str, Any]:
    """Change the environment, name, departments or organizer of a registered URL (its SMS settings stay)."""
    caller = authenticate(credentials, write=True)
    request = parse_body(EndpointInput, body)
    repository = _repository()
    current = owned(repository, caller.tenant_id, endpoint_id)
    check_url(request.base_url)
    if endpoint_id_for(request.base_url) != endpoint_id:
        raise FhirUrlInvalid("url", "The FHIR base URL of an entry cannot be changed.",
                             "Add the new URL as a new entry, then remove this one.")
    changed = current.model_copy(update={
        "base_url": normalize_base_url(request.base_url), "environment": request.environment,
        "display_name": request.display_name or current.display_name, "departments": request.departments,
        "organizer": request.organizer,
    })
    return public_endpoint(repository.save_endpoint(caller.tenant_id, changed, caller.actor))


def remove(credentials: Credentials, endpoint_id: str, confirm: str | None) -> dict[str, Any]:
    """Remove a FHIR base URL and its providers' Microsoft links; without confirm=true, say what would go."""
    caller = authenticate(credentials, write=True)
    repository = _repository()
    endpoint = owned(repository, caller.tenant_id, endpoint_id)
    region = repository.region(caller.tenant_id)
    links = EhrUserRepository(default_accounts())
    if confirm != "true":
        count = links.count_links(region, endpoint_id)
        raise ConfirmationRequired(
            f"Removing {endpoint.display_name} also deletes the {count} provider link{'' if count == 1 else 's'} "
            f"to Microsoft accounts kept for it in the {region} data region; launches from {endpoint.base_url} "
            "stop working.",
            next_step="Confirm the removal (send it again with confirm=true). If the URL is added again later, "
            "each provider signs in with Microsoft once more.", provider_links=count)
    # Links first: a crash part-way leaves a configured URL whose providers sign in again, never orphaned links.
    deleted = links.unlink_endpoint(region, endpoint_id)
    repository.delete_endpoint(caller.tenant_id, endpoint_id)
    deleted += links.unlink_endpoint(region, endpoint_id)  # a provider who linked meanwhile
    return {"removed": endpoint_id, "provider_links_deleted": deleted}


def owned(repository: ConfigRepository, tenant_id: str, endpoint_id: str) -> FhirEndpoint:
    """An endpoint of the caller's organization; another organization's looks exactly like a missing one."""
    endpoint = repository.endpoint(tenant_id, endpoint_id) if re.fullmatch(r"[0-9a-f]{16}", endpoint_id) else None
    if endpoint is None:
        raise NotFound("There is no such FHIR base URL in your organization's configuration.",
                       next_step="Reload the portal to see the current configuration.")
    return endpoint

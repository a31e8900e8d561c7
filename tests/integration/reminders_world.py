"""A world for the reminder job: extra Cerner tenants, organizations, endpoints, numbers and patients in the sandbox.

The job runs in this process (so the test drives its clock) against the sandbox's Azurite and stand-ins; these
helpers point the app's settings and its per-process singletons at the sandbox, and put them back afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox import config
from sandbox.oracle.resources import PatientSpec
from sandbox.oracle.state import TenantData
from shared.runtime import reset_process_state
from shared.storage.config import ConfigRepository, FhirEndpoint, SmsConsents


class AppSettings:
    """The sandbox's app settings in os.environ for the in-process job; undo() restores the environment."""

    def __init__(self, values: dict[str, str]):
        self._previous = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        reset_process_state()

    def undo(self) -> None:
        for name, value in self._previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_process_state()


def add_cerner_tenant(oracle, tenant: str, id_base: int) -> None:
    """One more Millennium tenant in the Oracle Health stand-in (its own FHIR base URL and id range)."""
    with oracle.lock:
        oracle.tenants = (*oracle.tenants, tenant)
        oracle.data[tenant] = TenantData({}, {}, {}, id_base)


@dataclass
class Site:
    """A Cerner tenant with one practitioner and one department, registered as an organization's endpoint."""

    name: str
    tenant: str
    organization: str
    endpoint: FhirEndpoint
    practitioner: str = ""
    department: str = ""
    patients: int = 0


@dataclass
class Booking:
    """A patient and their appointment at a site."""

    site: Site
    appointment_id: str
    patient_id: str
    mobile: str | None
    start: datetime
    end: datetime
    extra: dict[str, Any] = field(default_factory=dict)


def open_site(oracle, accounts, base_url: str, name: str, organization: str, tenant: str, id_base: int,
              **endpoint: Any) -> Site:
    """A new Cerner tenant with a practitioner and a department, saved as a FHIR endpoint of the organization."""
    add_cerner_tenant(oracle, tenant, id_base)
    practitioner = oracle.add_practitioner("Rita", "Reminder", "1999999999", f"rr{id_base}", tenant=tenant)
    department = oracle.add_location(f"Virtual Care {name}", tenant=tenant)
    settings = {"environment": "production", "display_name": name, "departments": [department], **endpoint}
    saved = FhirEndpoint(base_url=base_url, **settings)
    ConfigRepository(accounts).save_endpoint(organization, saved, "reminders-test")
    return Site(name, tenant, organization, saved, practitioner, department)


def open_organization(accounts, region: str, consented: bool = True) -> str:
    """A new Entra tenant with its data region chosen and (optionally) both SMS consents given."""
    organization = str(uuid.uuid4())
    repository = ConfigRepository(accounts)
    repository.choose_region(organization, region, "reminders-test")
    if consented:
        repository.save_sms_consents(organization, SmsConsents(consent_send=True, consent_attendees=True,
                                                               consent_send_by="t", consent_attendees_by="t"))
    return organization


def book(oracle, site: Site, start: datetime, *, minutes: int = 30, language: str | None = "en",
         mobile: str | None = None, home: str | None = None, status: str = "booked") -> Booking:
    """A fake patient (language None: no communication on file) and their video visit at the site."""
    site.patients += 1
    spec = PatientSpec(f"Sim{site.name}{site.patients:02d}", "Reminderday", language or "en", mobile=mobile, home=home,
                       birth_date=f"19{40 + site.patients:02d}-0{1 + site.patients % 9}-1{site.patients % 10}")
    patient_id = oracle.add_patient(spec, tenant=site.tenant)
    if language is None:
        with oracle.lock:
            del oracle.data[site.tenant].resources["Patient"][patient_id]["communication"]
    end = start + timedelta(minutes=minutes)
    appointment_id = oracle.add_appointment(patient_id=patient_id, practitioner_id=site.practitioner,
                                            location_id=site.department, start=start, end=end, status=status,
                                            tenant=site.tenant)
    return Booking(site, appointment_id, patient_id, mobile, start, end)


@contextmanager
def demo_sitting_out(accounts) -> Iterator[None]:
    """The demo organization's SMS consents withdrawn for a while, then given back."""
    repository = ConfigRepository(accounts)
    consents = repository.sms_consents(config.ENTRA_TENANT_ID)
    repository.save_sms_consents(config.ENTRA_TENANT_ID, SmsConsents())
    try:
        yield
    finally:
        repository.save_sms_consents(config.ENTRA_TENANT_ID, consents)


@contextmanager
def others_sitting_out(accounts) -> Iterator[None]:
    """Every organization with an endpoint so far (the demo one too) withdraws its SMS consents for a while."""
    repository = ConfigRepository(accounts)
    tenants = {config.ENTRA_TENANT_ID} | {tenant for tenant, _endpoint in repository.all_endpoints()}
    saved = {tenant: consents for tenant in tenants if (consents := repository.sms_consents(tenant)).complete}
    for tenant in saved:
        repository.save_sms_consents(tenant, SmsConsents())
    try:
        yield
    finally:
        for tenant, consents in saved.items():
            repository.save_sms_consents(tenant, consents)

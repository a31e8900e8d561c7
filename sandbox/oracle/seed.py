"""Deterministic fake world for the Oracle Health stand-in, placed relative to "now"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sandbox.config import CERNER_PROD_TENANT, CERNER_TEST_TENANT
from sandbox.oracle.resources import PatientSpec

# Obviously fake people; phone numbers in the 555-0100..0199 range reserved for fiction.
PATIENTS = (
    PatientSpec("Timmy", "Test", "en", mobile="8165550101", home="8165550111", gender="male",
                birth_date="1990-01-01"),
    PatientSpec("Sofia", "Prueba", "es", mobile="8165550102", gender="female", birth_date="1985-02-02"),
    PatientSpec("Joao", "Exemplo", "pt-BR", mobile="8165550103", home="8165550113", gender="male",
                birth_date="1978-03-03"),
    PatientSpec("Fiona", "Fakename", "en", home="8165550104", email="fiona.fakename@example.org", gender="female",
                birth_date="1969-04-04"),
    PatientSpec("Diego", "Ficticio", "es", mobile="8165550105", home="8165550115", gender="male",
                birth_date="2001-05-05"),
    PatientSpec("Ana", "Teste", "pt-BR", mobile="8165550106", gender="female", birth_date="1994-06-06"),
    PatientSpec("Sandy", "Sandbox", "en", email="sandy.sandbox@example.com", gender="female",
                birth_date="1950-07-07"),
    PatientSpec("Danny", "Demo", "en", mobile="8165550108", gender="male", birth_date="2010-08-08"),
)

# (id, given, family, NPI, username used as id_token `sub`)
PRACTITIONERS = (
    ("12742069", "Paula", "Practice", "1111111111", "pp012742"),
    ("4122622", "Sam", "Sandbox", "1111111112", "ss004122"),
)

LOCATIONS = (("32216049", "Virtual Care Clinic East"), ("21304876", "Virtual Care Clinic West"))

# (patient index, practitioner index, location index, minutes from now, length in minutes, status)
TODAY = (
    (0, 0, 0, -60, 30, "fulfilled"),
    (1, 1, 1, -30, 15, "booked"),
    (2, 0, 0, 5, 15, "booked"),
    (3, 1, 1, 15, 30, "booked"),
    (4, 0, 0, 30, 15, "booked"),
    (5, 1, 0, 60, 30, "booked"),
    (6, 0, 1, 90, 30, "booked"),
    (7, 1, 1, 150, 15, "cancelled"),
)
TOMORROW = (
    (1, 0, 0, 24 * 60, 30, "booked"),
    (2, 1, 1, 24 * 60 + 30, 15, "booked"),
    (4, 0, 0, 25 * 60, 30, "booked"),
)

# Separate id ranges per tenant: an id means something only under its own FHIR base URL.
ID_BASES = {CERNER_TEST_TENANT: 0, CERNER_PROD_TENANT: 5_000_000}


@dataclass
class Seeded:
    """Ids the seed created in one tenant, for tests to pick from."""

    patients: list[str] = field(default_factory=list)
    practitioners: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    today: list[str] = field(default_factory=list)
    tomorrow: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


class SeedableEhr(Protocol):
    """What seeding needs of the stand-in's state; the state seeds itself, so this module must not import it."""

    tenants: tuple[str, ...]
    seeded: dict[str, Seeded]

    def add_practitioner(self, given: str, family: str, npi: str, username: str, *,
                         practitioner_id: str | None = None, tenant: str = CERNER_TEST_TENANT) -> str: ...

    def add_location(self, name: str, *, location_id: str | None = None, tenant: str = CERNER_TEST_TENANT) -> str: ...

    def add_patient(self, spec: PatientSpec, *, patient_id: str | None = None,
                    tenant: str = CERNER_TEST_TENANT) -> str: ...

    def add_appointment(self, *, patient_id: str, practitioner_id: str, location_id: str, start: datetime,
                        end: datetime, status: str = "booked", tenant: str = CERNER_TEST_TENANT,
                        appointment_id: str | None = None) -> str: ...


def slot_base(now: datetime) -> datetime:
    """Now, floored to five minutes, so the seeded times look like a real schedule."""
    return now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)


def seed(state: SeedableEhr, now: datetime) -> dict[str, Seeded]:
    """Fill every tenant of the state with the fake world; return the ids per tenant."""
    seeded = {tenant: seed_tenant(state, tenant, now) for tenant in state.tenants}
    state.seeded.update(seeded)
    return seeded


def seed_tenant(state: SeedableEhr, tenant: str, now: datetime) -> Seeded:
    """Practitioners, locations, patients and ~a day and a half of appointments in one tenant."""
    base = ID_BASES.get(tenant, 0)
    out = Seeded()
    for practitioner_id, given, family, npi, username in PRACTITIONERS:
        out.practitioners.append(
            state.add_practitioner(given, family, npi, username, practitioner_id=practitioner_id, tenant=tenant))
    for location_id, name in LOCATIONS:
        out.locations.append(state.add_location(name, location_id=location_id, tenant=tenant))
    for number, spec in enumerate(PATIENTS):
        out.patients.append(state.add_patient(spec, patient_id=str(12724066 + base + number), tenant=tenant))
    start_of_slots = slot_base(now)
    for day, plan in ((out.today, TODAY), (out.tomorrow, TOMORROW)):
        for patient_no, practitioner_no, location_no, offset, minutes, status in plan:
            start = start_of_slots + timedelta(minutes=offset)
            appointment_id = state.add_appointment(
                patient_id=out.patients[patient_no], practitioner_id=out.practitioners[practitioner_no],
                location_id=out.locations[location_no], start=start, end=start + timedelta(minutes=minutes),
                status=status, tenant=tenant)
            day.append(appointment_id)
            if status == "cancelled":
                out.cancelled.append(appointment_id)
    return out

"""Helpers for tests that launch as a provider through the local host and the stand-ins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx

from sandbox import config
from shared.sms.phone import to_e164
from shared.storage.config import FhirEndpoint

PROVIDER = "dr.grey@contoso-health.example"
PRACTITIONER = "12742069"
OTHER_PRACTITIONER = "4122622"


def launch_url(sandbox, launch: str, iss: str | None = None, **extra: str) -> str:
    params = {"iss": iss or sandbox.world.fhir_base(), "launch": launch, **extra}
    return f"{sandbox.world.host_url}/api/launch/provider?{urlencode(params)}"


def todays_appointments(oracle, practitioner: str = PRACTITIONER, tenant: str = config.CERNER_TEST_TENANT) -> list[str]:
    booked = []
    for appointment_id in oracle.seeded[tenant].today:
        resource = oracle.resource("Appointment", appointment_id, tenant)
        actors = [p["actor"]["reference"] for p in resource["participant"]]
        if resource["status"] == "booked" and f"Practitioner/{practitioner}" in actors:
            booked.append(appointment_id)
    return booked


def patient_name(oracle, appointment_id: str) -> str:
    resource = oracle.resource("Appointment", appointment_id, config.CERNER_TEST_TENANT)
    return next(p["actor"]["display"] for p in resource["participant"] if "Patient/" in p["actor"]["reference"])


def new_appointment(oracle, practitioner: str = PRACTITIONER, minutes_from_now: int = 10,
                    skip: int = 0) -> tuple[str, str, str]:
    """Book a fresh visit for a patient with a mobile: (appointment id, patient display name, mobile in E.164).

    Fresh, so no earlier test has texted its link already (links are sent at most once a minute).
    """
    tenant = config.CERNER_TEST_TENANT
    patients = [p for p in oracle.all_resources("Patient", tenant)
                if any(t.get("use") == "mobile" for t in p.get("telecom", []))]
    patient = patients[skip % len(patients)]
    mobile = to_e164(next(t["value"] for t in patient["telecom"] if t.get("use") == "mobile"))
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=minutes_from_now)
    appointment_id = oracle.add_appointment(patient_id=patient["id"], practitioner_id=practitioner, start=start,
                                            end=start + timedelta(minutes=20),
                                            location_id=oracle.seeded[tenant].locations[0])
    display = next(p["actor"]["display"] for p in oracle.resource("Appointment", appointment_id, tenant)["participant"]
                   if "Patient/" in p["actor"]["reference"])
    return appointment_id, display, mobile


@dataclass
class Cerner:
    """A Cerner tenant of the stand-in (switchable: see sandbox/oracle/switches.py), registered as a test endpoint."""

    tenant: str
    base_url: str
    endpoint: FhirEndpoint
    other_origin: str  # the same server under another host name, outside the sandbox's TRUSTED_EHR_HOSTS

    def appointment(self, oracle) -> str:
        return todays_appointments(oracle, tenant=self.tenant)[0]


def launch_at(sandbox, oracle, cerner: Cerner) -> httpx.Response:
    """A provider launch at the tenant, followed like a browser does, to the page it ends on."""
    url = launch_url(sandbox, oracle.create_launch(cerner.appointment(oracle), tenant=cerner.tenant),
                     iss=cerner.base_url)
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        return browser.get(url)


def linked_ehr_users(accounts, cerner: Cerner) -> list[dict]:
    """EHR users linked under the tenant's endpoint."""
    table = accounts.table("ehrusers", "americas")
    return [dict(row) for row in table.list_entities() if row["PartitionKey"] == cerner.endpoint.id]

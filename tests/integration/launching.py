"""Helpers for tests that launch as a provider through the local host and the stand-ins."""

from __future__ import annotations

from urllib.parse import urlencode

from sandbox import config

PROVIDER = "dr.grey@contoso-health.example"
PRACTITIONER = "12742069"


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

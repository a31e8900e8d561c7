"""FHIR R4 resources in Oracle Health (Cerner Millennium) shapes, copied from the public examples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CERNER_EXT = "https://fhir-ehr.cerner.com/r4/StructureDefinition"
TEL_ADDRESS_EXT = "http://hl7.org/fhir/StructureDefinition/iso21090-TEL-address"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
VIDEO_VISIT_CODE = "2572307911"

# Cerner code set 36 (languages) beside the BCP-47 code the app relies on.
LANGUAGES = {
    "en": ("151", "English"),
    "es": ("1235", "Spanish"),
    "pt-BR": ("1290", "Portuguese (Brazil)"),
}


@dataclass(frozen=True)
class PatientSpec:
    """What differs between fake patients."""

    given: str
    family: str
    language: str
    mobile: str | None = None
    home: str | None = None
    email: str | None = None
    gender: str = "unknown"
    birth_date: str = "1980-01-01"


def fhir_instant(moment: datetime) -> str:
    """FHIR instant in UTC with milliseconds, as Cerner writes them."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def code_set(tenant: str, number: int) -> str:
    """Tenant-specific Cerner code set system URL."""
    return f"https://fhir.cerner.com/{tenant}/codeSet/{number}"


def meta(version: int, updated: datetime) -> dict[str, str]:
    """Resource meta with a string versionId."""
    return {"versionId": str(version), "lastUpdated": fhir_instant(updated)}


def narrative(html: str) -> dict[str, str]:
    """Generated narrative text."""
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{html}</div>'}


def display_name(spec: PatientSpec) -> str:
    """Cerner's "FAMILY, GIVEN" display."""
    return f"{spec.family.upper()}, {spec.given.upper()}"


def _phone(value: str, use: str, rank: int, number: str) -> dict[str, Any]:
    formatted = f"({value[:3]}){value[3:6]}-{value[6:]}"
    return {
        "id": f"CI-PH-{number}-{rank}",
        "extension": [{"valueUrl": formatted, "url": TEL_ADDRESS_EXT}],
        "system": "phone",
        "value": value,
        "use": use,
        "rank": str(rank),  # Cerner sends rank as a string
    }


def patient_telecom(spec: PatientSpec, number: str) -> list[dict[str, Any]]:
    """Phones in national format (no +1), rank as string; mobile first when there is one."""
    telecom: list[dict[str, Any]] = []
    for use, value in (("mobile", spec.mobile), ("home", spec.home)):
        if value:
            telecom.append(_phone(value, use, len(telecom) + 1, number))
    if spec.email:
        telecom.append({"id": f"CI-EM-{number}-0", "system": "email", "value": spec.email, "use": "home",
                        "rank": "1"})
    return telecom


def language(tenant: str, bcp47: str) -> dict[str, Any]:
    """Patient.communication.language with Cerner's code and the BCP-47 code."""
    cerner_code, text = LANGUAGES[bcp47]
    return {
        "coding": [
            {"system": code_set(tenant, 36), "code": cerner_code, "display": text, "userSelected": True},
            {"system": "urn:ietf:bcp:47", "code": bcp47, "display": text, "userSelected": False},
        ],
        "text": text,
    }


def patient(tenant: str, patient_id: str, spec: PatientSpec, updated: datetime) -> dict[str, Any]:
    """A Patient like cerner-patient.json, trimmed to what a scheduling app reads."""
    name = display_name(spec)
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": meta(1, updated),
        "text": narrative(f"<p><b>Patient</b></p><p><b>Name</b>: {name}</p><p><b>Status</b>: Active</p>"),
        "identifier": [{
            "id": f"CI-{patient_id}-0",
            "use": "usual",
            "type": {"coding": [{"system": code_set(tenant, 4), "code": "10", "display": "MRN",
                                 "userSelected": True}], "text": "MRN"},
            "system": "urn:oid:2.16.840.1.113883.6.1000",
            "value": patient_id[-5:],
        }],
        "active": True,
        "name": [{"id": f"CI-{patient_id}-0", "use": "official", "text": name, "family": spec.family.upper(),
                  "given": [spec.given.upper()]}],
        "telecom": patient_telecom(spec, patient_id),
        "gender": spec.gender,
        "birthDate": spec.birth_date,
        "communication": [{"language": language(tenant, spec.language), "preferred": True}],
    }


def practitioner(practitioner_id: str, given: str, family: str, npi: str, updated: datetime) -> dict[str, Any]:
    """A Practitioner like cerner-practitioner.json."""
    text = f"{family} MD, {given}"
    return {
        "resourceType": "Practitioner",
        "id": practitioner_id,
        "meta": meta(1, updated),
        "text": narrative(f"<p><b>Practitioner</b></p><p><b>Name</b>: {text}</p><p><b>Status</b>: Active</p>"),
        "extension": [{"valueBoolean": True, "url": f"{CERNER_EXT}/is-physician"}],
        "identifier": [{
            "use": "usual",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NPI",
                                 "display": "National provider identifier"}],
                     "text": "National Provider Identifier"},
            "system": "http://hl7.org/fhir/sid/us-npi",
            "value": npi,
        }],
        "active": True,
        "name": [{"use": "usual", "text": text, "family": f"{family} MD", "given": [given]}],
        "telecom": [{"system": "phone", "value": "5555550001", "use": "work"}],
        "gender": "unknown",
    }


def location(location_id: str, name: str, updated: datetime) -> dict[str, Any]:
    """A Location (department) an appointment happens at."""
    return {
        "resourceType": "Location",
        "id": location_id,
        "meta": meta(1, updated),
        "text": narrative(f"<p><b>Location</b></p><p><b>Name</b>: {name}</p><p><b>Status</b>: Active</p>"),
        "status": "active",
        "name": name,
        "mode": "instance",
    }


def reference(resource: dict[str, Any]) -> dict[str, str]:
    """Reference with Cerner's display text."""
    display = resource.get("name")
    if isinstance(display, list):
        display = display[0]["text"]
    return {"reference": f"{resource['resourceType']}/{resource['id']}", "display": str(display)}


def _typed(tenant: str, code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": code_set(tenant, 14250), "code": code, "display": text, "userSelected": True}],
            "text": text}


def participants(tenant: str, patient_res: dict, practitioner_res: dict, location_res: dict) -> list[dict]:
    """Patient, practitioner (primary performer) and location participants."""
    return [
        {"type": [_typed(tenant, "4572", "Patient")], "actor": reference(patient_res), "required": "required",
         "status": "accepted"},
        {"type": [_typed(tenant, "4574", "Resource"),
                  {"coding": [{"system": PARTICIPATION_TYPE, "code": "PPRF", "display": "primary performer"}]}],
         "actor": reference(practitioner_res), "required": "required", "status": "accepted"},
        {"actor": reference(location_res), "required": "required", "status": "accepted"},
    ]


def appointment(tenant: str, appointment_id: str, people: list[dict], start: datetime, end: datetime,
                status: str, updated: datetime) -> dict[str, Any]:
    """A Video Visit Appointment like cerner-appointment.json."""
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": appointment_id,
        "meta": meta(1, updated),
        "extension": [
            {"valueString": "", "url": f"{CERNER_EXT}/action-comment"},
            {"valueBoolean": True, "url": f"{CERNER_EXT}/is-cancelable"},
            {"valueBoolean": True, "url": f"{CERNER_EXT}/is-reschedulable"},
        ],
        "status": status,
        "serviceType": [{
            "coding": [{"system": code_set(tenant, 14249), "code": VIDEO_VISIT_CODE, "display": "Video Visit",
                        "userSelected": True}],
            "text": "Video Visit",
        }],
        "description": "Video Visit",
        "participant": people,
    }
    set_period(resource, start, end)
    return resource


def set_period(resource: dict[str, Any], start: datetime, end: datetime) -> None:
    """Write start, end, minutesDuration and requestedPeriod of an Appointment."""
    resource["start"] = fhir_instant(start)
    resource["end"] = fhir_instant(end)
    resource["minutesDuration"] = int((end - start).total_seconds() // 60)
    resource["requestedPeriod"] = [{"start": resource["start"], "end": resource["end"]}]
    resource["text"] = narrative(
        f"<p><b>Appointment</b></p><p><b>Status</b>: {resource['status'].title()}</p>"
        f"<p><b>Service Type</b>: Video Visit</p><p><b>Start</b>: {resource['start']}</p>"
        f"<p><b>End</b>: {resource['end']}</p>"
    )


def cancellation_reason(tenant: str) -> dict[str, Any]:
    """Cerner's cancelationReason for a cancelled appointment."""
    return {
        "coding": [
            {"system": code_set(tenant, 14229), "code": "2191414701", "display": "Scheduled by mistake",
             "userSelected": True},
            {"system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason", "code": "oth-err",
             "display": "Other: Error", "userSelected": False},
        ],
        "text": "Scheduled by mistake",
    }


def parse_instant(value: str) -> datetime:
    """Parse a FHIR instant written by fhir_instant (or any ISO-8601 with offset)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def actor_ids(resource: dict[str, Any], resource_type: str) -> list[str]:
    """Ids of the participants of one type in an Appointment."""
    prefix = f"{resource_type}/"
    refs = (p.get("actor", {}).get("reference", "") for p in resource.get("participant", []))
    return [ref[len(prefix):] for ref in refs if ref.startswith(prefix)]
